//! Activities — who did what, where and when — from every service to the
//! one activity store (the organizations service): what an activity is, how
//! it travels ([`Delivery`]) and where it goes ([`ActivitySink`]). How a
//! service records one with the change it describes, and ships it, is
//! `orgplane_storage::activity`.

use std::future::Future;

use orgplane_proto::organizations as pb;

use crate::{
    Error,
    json::{json_to_struct, struct_to_json},
    principal::Principal,
    time::{from_optional_timestamp, now_micros, to_timestamp},
};

/// What was done, in the words of the feed.
pub mod action {
    /// Something new.
    pub const CREATED: &str = "created";
    /// Something changed.
    pub const UPDATED: &str = "updated";
    /// Something removed.
    pub const DELETED: &str = "deleted";
}

/// One activity, as a service records it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Activity {
    /// UUIDv7 given at recording: it orders activities by time and, with the
    /// service's name, keys their delivery.
    pub uuid: String,
    /// The organization it happened in.
    pub organization_uuid: String,
    /// Who acted: a username, service account or agent name.
    pub actor: String,
    /// What was done: `created`, `updated`, `deleted`, or a verb of the
    /// subject's life (`archived`, `rotated`, `cancelled`, ...).
    pub action: String,
    /// Kind of the subject, e.g. `project`, `member`, `run`.
    pub subject_kind: String,
    /// Name of the subject.
    pub subject_name: String,
    /// UUID of the subject, when it has one.
    pub subject_uuid: String,
    /// The subject's parent as `kind/name` (e.g. `agent/gpu-box`), if any.
    pub parent: String,
    /// Slug of the project the subject belongs to, if any.
    pub project: String,
    /// Details of the change, a JSON object.
    pub metadata: serde_json::Value,
    /// When it happened (microseconds).
    pub create_time: i64,
}

impl Activity {
    /// An activity of `actor` doing `action` to `subject_kind`
    /// `subject_name` in the organization `organization_uuid`, now.
    pub fn new(
        organization_uuid: &str,
        actor: &Principal,
        action: &str,
        subject_kind: &str,
        subject_name: &str,
    ) -> Self {
        Self {
            uuid: uuid::Uuid::now_v7().to_string(),
            organization_uuid: organization_uuid.to_owned(),
            actor: actor.name.clone(),
            action: action.to_owned(),
            subject_kind: subject_kind.to_owned(),
            subject_name: subject_name.to_owned(),
            metadata: serde_json::json!({}),
            create_time: now_micros(),
            ..Default::default()
        }
    }

    /// With the subject's UUID.
    pub fn subject_uuid(mut self, uuid: &str) -> Self {
        self.subject_uuid = uuid.to_owned();
        self
    }

    /// With the subject's parent, `kind/name`.
    pub fn parent(mut self, kind: &str, name: &str) -> Self {
        self.parent = format!("{kind}/{name}");
        self
    }

    /// With the project the subject belongs to.
    pub fn project(mut self, project: &str) -> Self {
        self.project = project.to_owned();
        self
    }

    /// With details of the change.
    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = metadata;
        self
    }
}

/// An activity with its delivery key.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// `<service>:<uuid>`: the store keeps one activity per key.
    pub idempotency_key: String,
    /// The activity.
    pub activity: Activity,
}

impl Delivery {
    /// As `RecordActivities` carries it.
    pub fn to_proto(&self) -> pb::RecordedActivity {
        let a = &self.activity;
        pb::RecordedActivity {
            idempotency_key: self.idempotency_key.clone(),
            organization_uuid: a.organization_uuid.clone(),
            activity: Some(pb::Activity {
                uuid: a.uuid.clone(),
                organization: String::new(),
                actor: a.actor.clone(),
                action: a.action.clone(),
                subject_kind: a.subject_kind.clone(),
                subject_name: a.subject_name.clone(),
                subject_uuid: a.subject_uuid.clone(),
                parent: a.parent.clone(),
                project: a.project.clone(),
                create_time: Some(to_timestamp(a.create_time)),
                metadata: Some(json_to_struct(&a.metadata)),
            }),
        }
    }

    /// From what `RecordActivities` carries.
    pub fn from_proto(recorded: pb::RecordedActivity) -> Result<Self, Error> {
        let a = recorded
            .activity
            .ok_or_else(|| Error::invalid("activities.activity", "is required"))?;
        Ok(Self {
            idempotency_key: recorded.idempotency_key,
            activity: Activity {
                uuid: a.uuid,
                organization_uuid: recorded.organization_uuid,
                actor: a.actor,
                action: a.action,
                subject_kind: a.subject_kind,
                subject_name: a.subject_name,
                subject_uuid: a.subject_uuid,
                parent: a.parent,
                project: a.project,
                metadata: a
                    .metadata
                    .as_ref()
                    .map(struct_to_json)
                    .unwrap_or_else(|| serde_json::json!({})),
                create_time: from_optional_timestamp(
                    a.create_time.as_ref(),
                    "activities.activity.create_time",
                )?
                .unwrap_or(0),
            },
        })
    }
}

/// Where a shipper delivers: the activity store, local or remote.
pub trait ActivitySink: Send + Sync {
    /// Stores `batch`, skipping keys stored before; how many were new.
    fn deliver(&self, batch: Vec<Delivery>) -> impl Future<Output = Result<u64, Error>> + Send;
}
