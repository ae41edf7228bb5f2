//! Agent tokens: issued when the agents service creates an agent or rotates
//! its token (the earlier ones die in the same transaction), revoked when
//! the agent is deleted. They introspect to principals of kind `Agent`
//! carrying the agent's organization, with the `read` and `write` scopes.

use orgplane_platform::{
    Error,
    principal::{Principal, PrincipalKind, SCOPE_READ, SCOPE_WRITE},
    time::now_micros,
    validate::{self, Violations},
};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};

use super::{Identity, secrets, tokens::Introspection};
use crate::storage::agent_tokens;

/// Agent tokens do not expire on their own: they live until rotated or
/// revoked. Introspection reports this far ahead as their expiry.
const NEVER: i64 = 253_402_300_799_000_000; // 9999-12-31

/// The agent a token is issued for.
#[derive(Debug, Clone)]
pub struct AgentIdentity {
    /// UUID of the agent.
    pub agent_uuid: String,
    /// Its name.
    pub agent_name: String,
    /// Slug of its organization.
    pub organization: String,
    /// UUID of its organization.
    pub organization_uuid: String,
}

impl Identity {
    /// Issues a new token for an agent; its earlier tokens stop working.
    pub async fn issue_agent_token(&self, agent: AgentIdentity) -> Result<String, Error> {
        let mut v = Violations::new();
        v.check("agent_uuid", validate::required(&agent.agent_uuid, 64));
        v.check("agent_name", validate::slug(&agent.agent_name));
        v.check("organization", validate::slug(&agent.organization));
        v.check(
            "organization_uuid",
            validate::required(&agent.organization_uuid, 64),
        );
        v.finish()?;
        let secret = secrets::generate(secrets::AGENT_PREFIX);
        let agent_uuid = agent.agent_uuid.clone();
        let txn = self.db.begin().await?;
        agent_tokens::Entity::delete_many()
            .filter(agent_tokens::Column::AgentUuid.eq(agent.agent_uuid.as_str()))
            .exec(&txn)
            .await?;
        agent_tokens::ActiveModel {
            uuid: Set(uuid::Uuid::now_v7().to_string()),
            agent_uuid: Set(agent.agent_uuid),
            agent_name: Set(agent.agent_name),
            organization: Set(agent.organization),
            organization_uuid: Set(agent.organization_uuid),
            secret_hash: Set(secrets::hash(&secret)),
            create_time: Set(now_micros()),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        self.revoked(&agent_uuid);
        Ok(secret)
    }

    /// Revokes every token of an agent; returns how many.
    pub async fn revoke_agent_tokens(&self, agent_uuid: &str) -> Result<u64, Error> {
        let mut v = Violations::new();
        v.check("agent_uuid", validate::required(agent_uuid, 64));
        v.finish()?;
        let revoked = agent_tokens::Entity::delete_many()
            .filter(agent_tokens::Column::AgentUuid.eq(agent_uuid))
            .exec(&self.db)
            .await?
            .rows_affected;
        self.revoked(agent_uuid);
        Ok(revoked)
    }

    /// Revokes every agent token of the organization `organization_uuid`
    /// (deleted); returns how many.
    pub async fn revoke_organization_agent_tokens(
        &self,
        organization_uuid: &str,
    ) -> Result<u64, Error> {
        let mut v = Violations::new();
        v.check(
            "organization_uuid",
            validate::required(organization_uuid, 64),
        );
        v.finish()?;
        let revoked = agent_tokens::Entity::delete_many()
            .filter(agent_tokens::Column::OrganizationUuid.eq(organization_uuid))
            .exec(&self.db)
            .await?
            .rows_affected;
        // Which agents held them is not kept: every cached answer goes.
        self.revocations.publish_everything();
        Ok(revoked)
    }

    pub(crate) async fn introspect_agent(
        &self,
        secret: &str,
    ) -> Result<Option<Introspection>, Error> {
        let Some(token) = agent_tokens::Entity::find()
            .filter(agent_tokens::Column::SecretHash.eq(secrets::hash(secret)))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Introspection {
            principal: Principal {
                kind: PrincipalKind::Agent,
                uuid: token.agent_uuid,
                name: token.agent_name,
                scopes: vec![SCOPE_READ.to_owned(), SCOPE_WRITE.to_owned()],
                instance_admin: false,
                token_uuid: token.uuid,
                organization: Some(token.organization),
                email: String::new(),
                email_verified: false,
                role: None,
                organization_uuid: Some(token.organization_uuid),
                auth_method: String::new(),
            },
            expire_time: NEVER,
        }))
    }
}
