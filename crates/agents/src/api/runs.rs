//! Runs as the API shows them (the `RunService` itself comes next).

use std::collections::HashMap;

use orgplane_platform::{grpc::json_to_struct, time::to_timestamp};
use orgplane_proto::agents as pb;

use crate::storage::runs;

/// A run, its queue shown as `agent/queue` (`queue_names` maps queue UUIDs
/// to names).
pub(super) fn run(r: runs::Model, agent: &str, queue_names: &HashMap<String, String>) -> pb::Run {
    let spec: serde_json::Value =
        serde_json::from_str(&r.spec).unwrap_or_else(|_| serde_json::json!({}));
    let queue = queue_names
        .get(&r.queue_uuid)
        .map(|q| format!("{agent}/{q}"))
        .unwrap_or_default();
    pb::Run {
        lease: r.lease_id.clone().map(|id| pb::Lease {
            id,
            agent: agent.to_owned(),
            expire_time: r.lease_expire_time.map(to_timestamp),
        }),
        uuid: r.uuid,
        project: r.project,
        queue,
        status: r.status,
        name: r.name,
        spec: Some(json_to_struct(&spec)),
        attempts: r.attempts,
        submitter: r.submitter,
        create_time: Some(to_timestamp(r.create_time)),
        update_time: Some(to_timestamp(r.update_time)),
    }
}
