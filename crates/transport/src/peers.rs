//! Clients of the internal RPCs one service calls on another, speaking the
//! domain's types: domain code calls these without knowing gRPC. Each wraps
//! a lazily connected mTLS channel (see [`crate::client::mtls_channel`]).

use crate::client::Channel;
use moka::future::Cache;
use orgplane_proto::{
    agents::{GetAgentsStatsRequest, agents_internal_client::AgentsInternalClient},
    identity::{
        IssueAgentTokenRequest, MarkEmailVerifiedRequest, RevokeAgentTokensRequest,
        RevokeOrganizationAgentTokensRequest, identity_internal_client::IdentityInternalClient,
    },
    organizations::{
        AdmitExternalUserRequest, CheckRestrictionRequest, GetExternalAuthProvidersRequest,
        GetRunRoutingRequest, ListDeletedOrganizationsRequest, RecordActivitiesRequest,
        WatchAccessChangesRequest, WatchAccessChangesResponse,
        organizations_internal_client::OrganizationsInternalClient,
    },
    registry::{
        GetHiddenEntriesRequest, GetRegistryCountsRequest,
        registry_internal_client::RegistryInternalClient,
    },
};

use crate::access::{MAX_DECISION_TTL, PermissionChecker};
use crate::staleness::Asked;
use orgplane_platform::{
    Error,
    activity::{ActivitySink, Delivery},
    authz::Role,
    deletions::{DeletedOrganization, DeletionLog},
    principal::Principal,
    restriction::{HiddenEntries, Restriction, Viewer, unknown_in_restriction},
    time::{from_optional_timestamp, to_timestamp},
};

/// The identity service, as the other services use it.
#[derive(Debug, Clone)]
pub struct IdentityPeer {
    client: IdentityInternalClient<Channel>,
}

impl IdentityPeer {
    /// Over a channel to identity.
    pub fn new(identity: Channel) -> Self {
        Self {
            client: IdentityInternalClient::new(identity),
        }
    }

    /// Marks `email` verified for the user, if it is still their address;
    /// returns whether their address is now verified.
    pub async fn mark_email_verified(&self, user_uuid: &str, email: &str) -> Result<bool, Error> {
        let answer = self
            .client
            .clone()
            .mark_email_verified(MarkEmailVerifiedRequest {
                user_uuid: user_uuid.to_owned(),
                email: email.to_owned(),
            })
            .await
            .map_err(|status| Error::from_upstream("the identity service", status))?;
        Ok(answer.into_inner().verified)
    }

    /// A new token for the agent (its earlier ones die), to show once.
    pub async fn issue_agent_token(
        &self,
        agent_uuid: &str,
        agent_name: &str,
        organization: &str,
        organization_uuid: &str,
    ) -> Result<String, Error> {
        let answer = self
            .client
            .clone()
            .issue_agent_token(IssueAgentTokenRequest {
                agent_uuid: agent_uuid.to_owned(),
                agent_name: agent_name.to_owned(),
                organization: organization.to_owned(),
                organization_uuid: organization_uuid.to_owned(),
            })
            .await
            .map_err(|status| Error::from_upstream("the identity service", status))?;
        Ok(answer.into_inner().token)
    }

    /// Revokes every agent token of a deleted organization.
    pub async fn revoke_organization_agent_tokens(
        &self,
        organization_uuid: &str,
    ) -> Result<(), Error> {
        self.client
            .clone()
            .revoke_organization_agent_tokens(RevokeOrganizationAgentTokensRequest {
                organization_uuid: organization_uuid.to_owned(),
            })
            .await
            .map_err(|status| Error::from_upstream("the identity service", status))?;
        Ok(())
    }

    /// Revokes every token of an agent.
    pub async fn revoke_agent_tokens(&self, agent_uuid: &str) -> Result<(), Error> {
        self.client
            .clone()
            .revoke_agent_tokens(RevokeAgentTokensRequest {
                agent_uuid: agent_uuid.to_owned(),
            })
            .await
            .map_err(|status| Error::from_upstream("the identity service", status))?;
        Ok(())
    }
}

/// An organization's OIDC identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalProvider {
    /// Slug of the provider.
    pub name: String,
    /// Issuer URL.
    pub issuer: String,
    /// The `aud` its ID tokens must carry.
    pub client_id: String,
    /// Email domains it may sign in; empty allows any.
    pub allowed_email_domains: Vec<String>,
}

/// What `AdmitExternalUser` decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The user's role after admission; `None` when not admitted.
    pub role: Option<Role>,
    /// The call added the user.
    pub joined: bool,
    /// Not admitted, but invited: a pending invitation awaits acceptance.
    pub invited: bool,
}

/// Where a project's runs go and what they may use (`GetRunRouting`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunRouting {
    /// UUID of the project.
    pub project_uuid: String,
    /// An archived project takes no new runs.
    pub archived: bool,
    /// The project's default queue, `agent/queue`, or empty.
    pub project_default_queue: String,
    /// The organization's default queue, or empty.
    pub organization_default_queue: String,
    /// Agents runs may use; empty allows all.
    pub allowed_agents: Vec<String>,
    /// Queues (`agent/queue`) runs may use; empty allows every queue of the
    /// allowed agents.
    pub allowed_queues: Vec<String>,
    /// Connections runs may name (`spec.connections`); empty allows every
    /// connection of the organization.
    pub allowed_connections: Vec<String>,
}

/// The organizations service, as the other services use it.
#[derive(Clone)]
pub struct OrganizationsPeer {
    client: OrganizationsInternalClient<Channel>,
    /// Access decisions, cached for a few seconds.
    pub permissions: PermissionChecker,
    /// Run routing by (organization UUID, project), cached as long as access
    /// decisions: a settings change reaches submissions within that time.
    /// Each with when it was asked, judged by the access decisions' clock.
    routing: Cache<(String, String), (RunRouting, Asked)>,
}

impl std::fmt::Debug for OrganizationsPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrganizationsPeer")
            .field("permissions", &self.permissions)
            .finish_non_exhaustive()
    }
}

impl OrganizationsPeer {
    /// Over a channel to the organizations service.
    pub fn new(organizations: Channel) -> Self {
        Self {
            client: OrganizationsInternalClient::new(organizations.clone()),
            permissions: PermissionChecker::new(organizations),
            routing: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(MAX_DECISION_TTL)
                .build(),
        }
    }

    /// Follows the changes of access made through any replica of the
    /// organizations service until `stop` completes, forgetting the access
    /// decisions and run routings of each organization named.
    pub async fn follow_access_changes(self, stop: impl std::future::Future<Output = ()>) {
        let client = self.client.clone();
        crate::follow::follow(
            "access changes",
            move || {
                let mut client = client.clone();
                async move {
                    client
                        .watch_access_changes(WatchAccessChangesRequest {})
                        .await
                }
            },
            |notice: WatchAccessChangesResponse| {
                if notice.everything {
                    self.forget_all();
                    return;
                }
                self.permissions
                    .forget_organizations(&notice.organization_uuids);
            },
            || self.forget_all(),
            stop,
        )
        .await;
    }

    fn forget_all(&self) {
        self.permissions.forget_all();
        self.routing.invalidate_all();
    }

    /// Where the runs of `project` go; `NOT_FOUND` when it does not exist.
    pub async fn run_routing(
        &self,
        organization_uuid: &str,
        project: &str,
    ) -> Result<RunRouting, Error> {
        let key = (organization_uuid.to_owned(), project.to_owned());
        if let Some((hit, asked)) = self.routing.get(&key).await
            && self.permissions.changes().holds(organization_uuid, asked)
        {
            return Ok(hit);
        }
        let asked = self.permissions.changes().asked();
        let answer = self
            .client
            .clone()
            .get_run_routing(GetRunRoutingRequest {
                organization_uuid: organization_uuid.to_owned(),
                project: project.to_owned(),
            })
            .await
            .map_err(|status| match status.code() {
                tonic::Code::NotFound => Error::not_found("project", project),
                _ => Self::upstream(status),
            })?
            .into_inner();
        let routing = RunRouting {
            project_uuid: answer.project_uuid,
            archived: answer.archived,
            project_default_queue: answer.project_default_queue,
            organization_default_queue: answer.organization_default_queue,
            allowed_agents: answer.allowed_agents,
            allowed_queues: answer.allowed_queues,
            allowed_connections: answer.allowed_connections,
        };
        self.routing.insert(key, (routing.clone(), asked)).await;
        Ok(routing)
    }

    fn upstream(status: tonic::Status) -> Error {
        Error::from_upstream("the organizations service", status)
    }

    /// Checks that `restriction`, about to be stored under `field` (its
    /// lists already checked, [`Restriction::check`]), names users and teams
    /// of the organization (`INVALID_ARGUMENT` otherwise).
    pub async fn check_restriction(
        &self,
        organization_uuid: &str,
        restriction: &Restriction,
        field: &str,
    ) -> Result<(), Error> {
        let answer = self
            .client
            .clone()
            .check_restriction(CheckRestrictionRequest {
                organization_uuid: organization_uuid.to_owned(),
                restriction: Some(restriction.to_proto()),
            })
            .await
            .map_err(Self::upstream)?
            .into_inner();
        unknown_in_restriction(field, &answer.unknown_users, &answer.unknown_teams).finish()
    }

    /// The enabled OIDC providers of `organization` (none when it does not
    /// exist).
    pub async fn external_providers(
        &self,
        organization: &str,
    ) -> Result<Vec<ExternalProvider>, Error> {
        let answer = self
            .client
            .clone()
            .get_external_auth_providers(GetExternalAuthProvidersRequest {
                organization: organization.to_owned(),
            })
            .await
            .map_err(Self::upstream)?
            .into_inner();
        Ok(answer
            .providers
            .into_iter()
            .map(|p| ExternalProvider {
                name: p.name,
                issuer: p.issuer,
                client_id: p.client_id,
                allowed_email_domains: p.allowed_email_domains,
            })
            .collect())
    }

    /// Admits a user signed in by one of `organization`'s providers.
    pub async fn admit_external_user(
        &self,
        principal: &Principal,
        organization: &str,
    ) -> Result<Admission, Error> {
        let answer = self
            .client
            .clone()
            .admit_external_user(AdmitExternalUserRequest {
                principal: Some(principal.to_proto()),
                organization: organization.to_owned(),
            })
            .await
            .map_err(Self::upstream)?
            .into_inner();
        Ok(Admission {
            role: Role::parse(&answer.role),
            joined: answer.joined,
            invited: answer.invited,
        })
    }
}

/// The activity store, for the shippers of the other services.
impl ActivitySink for OrganizationsPeer {
    async fn deliver(&self, batch: Vec<Delivery>) -> Result<u64, Error> {
        let answer = self
            .client
            .clone()
            .record_activities(RecordActivitiesRequest {
                activities: batch.iter().map(Delivery::to_proto).collect(),
            })
            .await
            .map_err(Self::upstream)?
            .into_inner();
        Ok(answer.recorded as u64)
    }
}

/// The registry and the agents service, as the organizations service asks
/// them for an organization's statistics.
#[derive(Debug, Clone)]
pub struct StatsPeers {
    registry: RegistryInternalClient<Channel>,
    agents: AgentsInternalClient<Channel>,
}

/// Runs submitted to one queue on one day (`GetAgentsStats`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDay {
    /// `agent/queue`.
    pub queue: String,
    /// Start of the day (UTC, microseconds).
    pub day: i64,
    /// How many runs.
    pub runs: i64,
}

impl StatsPeers {
    /// Over channels to the registry and the agents service.
    pub fn new(registry: Channel, agents: Channel) -> Self {
        Self {
            registry: RegistryInternalClient::new(registry),
            agents: AgentsInternalClient::new(agents),
        }
    }

    /// The registry's counts of an organization (or one project), of what
    /// `viewer` reaches (everything when `None`).
    pub async fn registry_counts(
        &self,
        organization_uuid: &str,
        project: &str,
        viewer: Option<&Viewer>,
    ) -> Result<Vec<(String, i64)>, Error> {
        let answer = self
            .registry
            .clone()
            .get_registry_counts(GetRegistryCountsRequest {
                organization_uuid: organization_uuid.to_owned(),
                project: project.to_owned(),
                viewer: viewer.map(Viewer::to_proto),
            })
            .await
            .map_err(|status| Error::from_upstream("the registry", status))?
            .into_inner();
        Ok(answer.counts.into_iter().collect())
    }

    /// What the registry's restrictions hide from `viewer`.
    pub async fn hidden_entries(
        &self,
        organization_uuid: &str,
        viewer: &Viewer,
    ) -> Result<HiddenEntries, Error> {
        let answer = self
            .registry
            .clone()
            .get_hidden_entries(GetHiddenEntriesRequest {
                organization_uuid: organization_uuid.to_owned(),
                viewer: Some(viewer.to_proto()),
            })
            .await
            .map_err(|status| Error::from_upstream("the registry", status))?
            .into_inner();
        Ok(HiddenEntries {
            model_registry: answer.model_registry,
            component_hub: answer.component_hub,
            models: answer.models,
            components: answer.components,
        })
    }

    /// The agents service's counts of an organization (or one project) and
    /// its runs per queue per day in `[start, end)`, without the runs of
    /// `hidden` projects.
    pub async fn agents_stats(
        &self,
        organization_uuid: &str,
        (project, hidden): (&str, &[String]),
        (start, end): (i64, i64),
    ) -> Result<(Vec<(String, i64)>, Vec<QueueDay>), Error> {
        let answer = self
            .agents
            .clone()
            .get_agents_stats(GetAgentsStatsRequest {
                organization_uuid: organization_uuid.to_owned(),
                project: project.to_owned(),
                start_time: Some(to_timestamp(start)),
                end_time: Some(to_timestamp(end)),
                hidden_projects: hidden.to_vec(),
            })
            .await
            .map_err(|status| Error::from_upstream("the agents service", status))?
            .into_inner();
        let days = answer
            .runs_per_queue_day
            .into_iter()
            .map(|d| {
                Ok(QueueDay {
                    day: from_optional_timestamp(d.day.as_ref(), "day")?.unwrap_or(0),
                    queue: d.queue,
                    runs: d.runs,
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok((answer.counts.into_iter().collect(), days))
    }
}

impl DeletionLog for OrganizationsPeer {
    async fn deleted_organizations(
        &self,
        page_token: &str,
        page_size: i32,
    ) -> Result<(Vec<DeletedOrganization>, String), Error> {
        let answer = self
            .client
            .clone()
            .list_deleted_organizations(ListDeletedOrganizationsRequest {
                page_size,
                page_token: page_token.to_owned(),
            })
            .await
            .map_err(Self::upstream)?
            .into_inner();
        let deleted = answer
            .deleted_organizations
            .into_iter()
            .map(|d| {
                Ok(DeletedOrganization {
                    delete_time: from_optional_timestamp(d.delete_time.as_ref(), "delete_time")?
                        .unwrap_or(0),
                    uuid: d.uuid,
                    name: d.name,
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok((deleted, answer.next_page_token))
    }
}
