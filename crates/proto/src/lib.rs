//! The contracts of orgplane: Rust code generated from `proto/`, and the
//! encoded descriptor set that every server registers for reflection.
//!
//! Each service's package is re-exported under a short name, e.g.
//! [`identity`] for `orgplane.identity.v1`.

pub use prost;
pub use prost_types;
pub use tonic;

pub mod codec;

#[allow(clippy::all, missing_docs, rustdoc::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/orgplane.rs"));
}

pub use generated::orgplane::agents::v1 as agents;
pub use generated::orgplane::common::v1 as common;
pub use generated::orgplane::identity::v1 as identity;
pub use generated::orgplane::organizations::v1 as organizations;
pub use generated::orgplane::registry::v1 as registry;

/// The encoded `FileDescriptorSet` of every orgplane proto and its imports.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/orgplane_descriptor.bin"));

/// Every public gRPC service, by full name, with the package it belongs to.
/// The gateway routes these; `*Internal` services are never listed here.
pub const PUBLIC_SERVICES: &[(&str, Backend)] = &[
    ("orgplane.identity.v1.AuthService", Backend::Identity),
    ("orgplane.identity.v1.UserService", Backend::Identity),
    ("orgplane.identity.v1.TokenService", Backend::Identity),
    (
        "orgplane.identity.v1.ServiceAccountService",
        Backend::Identity,
    ),
    (
        "orgplane.organizations.v1.OrganizationService",
        Backend::Organizations,
    ),
    (
        "orgplane.organizations.v1.MemberService",
        Backend::Organizations,
    ),
    (
        "orgplane.organizations.v1.InvitationService",
        Backend::Organizations,
    ),
    (
        "orgplane.organizations.v1.TeamService",
        Backend::Organizations,
    ),
    (
        "orgplane.organizations.v1.ProjectService",
        Backend::Organizations,
    ),
    (
        "orgplane.organizations.v1.ActivityService",
        Backend::Organizations,
    ),
    (
        "orgplane.registry.v1.ModelRegistryService",
        Backend::Registry,
    ),
    (
        "orgplane.registry.v1.ComponentHubService",
        Backend::Registry,
    ),
    ("orgplane.agents.v1.AgentService", Backend::Agents),
    ("orgplane.agents.v1.QueueService", Backend::Agents),
    ("orgplane.agents.v1.ConnectionService", Backend::Agents),
    ("orgplane.agents.v1.RunService", Backend::Agents),
];

/// Methods callable without a bearer token; the gateway refuses every other
/// call that carries none.
pub const ANONYMOUS_METHODS: &[&str] = &[
    "/orgplane.identity.v1.AuthService/SignUp",
    "/orgplane.identity.v1.AuthService/Login",
    "/orgplane.identity.v1.AuthService/RequestPasswordReset",
    "/orgplane.identity.v1.AuthService/ConfirmPasswordReset",
    "/orgplane.identity.v1.AuthService/ExchangeExternalToken",
];

/// The backend services behind the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// Users, tokens, service accounts.
    Identity,
    /// Organizations, members, teams, invitations, projects, activities.
    Organizations,
    /// Model registry and component hub.
    Registry,
    /// Agents, queues, connections, runs.
    Agents,
}

impl Backend {
    /// Every backend, in a fixed order.
    pub const ALL: [Backend; 4] = [
        Backend::Identity,
        Backend::Organizations,
        Backend::Registry,
        Backend::Agents,
    ];

    /// The service name used in certificates, config keys and logs.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Identity => "identity",
            Backend::Organizations => "organizations",
            Backend::Registry => "registry",
            Backend::Agents => "agents",
        }
    }
}

/// The gRPC path (`/package.Service/Method`) of every orgplane method
/// that changes something: every one not marked
/// `option idempotency_level = NO_SIDE_EFFECTS` in `proto/`, internal
/// services included. The activity feed's coverage test is driven by this
/// list, so a new mutating method must record its activity (or say why not).
pub fn mutating_methods() -> Vec<String> {
    methods().filter(|m| !m.read).map(|m| m.path).collect()
}

/// The gRPC paths of every method whose responses stream.
pub fn streaming_methods() -> Vec<String> {
    methods()
        .filter(|m| m.server_streaming)
        .map(|m| m.path)
        .collect()
}

/// What the descriptor set says of one method.
struct Method {
    /// `/package.Service/Method`.
    path: String,
    /// Marked read-only (`NO_SIDE_EFFECTS`).
    read: bool,
    /// Its responses stream.
    server_streaming: bool,
}

/// Every orgplane method.
fn methods() -> impl Iterator<Item = Method> {
    use prost::Message;
    use prost_types::method_options::IdempotencyLevel;

    let fds = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET)
        .expect("the descriptor set built from proto/ decodes");
    fds.file
        .into_iter()
        .filter(|file| file.package().starts_with("orgplane."))
        .flat_map(|file| {
            let package = file.package().to_owned();
            file.service.into_iter().flat_map(move |service| {
                let prefix = format!("/{package}.{}/", service.name());
                service.method.into_iter().map(move |method| {
                    let read = method.options.as_ref().map(|o| o.idempotency_level())
                        == Some(IdempotencyLevel::NoSideEffects);
                    Method {
                        path: format!("{prefix}{}", method.name()),
                        read,
                        server_streaming: method.server_streaming(),
                    }
                })
            })
        })
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn descriptor_set_lists_every_public_service() {
        let fds = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
        let mut declared = Vec::new();
        for file in &fds.file {
            for service in &file.service {
                declared.push(format!("{}.{}", file.package(), service.name()));
            }
        }
        for (name, _) in PUBLIC_SERVICES {
            assert!(
                declared.iter().any(|d| d == name),
                "{name} missing from proto"
            );
        }
        let public = declared.iter().filter(|d| !d.ends_with("Internal")).count();
        assert_eq!(
            public,
            PUBLIC_SERVICES.len(),
            "a public service is not routed: {declared:?}"
        );
    }

    #[test]
    fn methods_marked_read_only_are_named_as_reads() {
        let (reads, writes): (Vec<_>, Vec<_>) = methods().partition(|m| m.read);
        let named_as_read = |path: &str| {
            let method = path.rsplit('/').next().unwrap();
            ["Get", "List", "Watch", "Check", "Introspect"]
                .iter()
                .any(|verb| method.starts_with(verb))
        };
        for Method { path, .. } in &reads {
            assert!(named_as_read(path), "{path} is marked NO_SIDE_EFFECTS");
        }
        for Method { path, .. } in &writes {
            assert!(
                !named_as_read(path),
                "{path} reads: mark it NO_SIDE_EFFECTS"
            );
        }
        assert!(
            mutating_methods()
                .contains(&"/orgplane.registry.v1.ModelRegistryService/CreateModel".to_owned())
        );
        assert_eq!(
            streaming_methods(),
            ["/orgplane.organizations.v1.ActivityService/WatchActivities"]
        );
    }
}
