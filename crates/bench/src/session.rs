//! Signed-in clients of a running control plane, and the data the
//! scenarios read: two users (an owner and a member), an organization, and
//! as many projects as the deep-page scenario needs.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use orgplane_proto::{
    identity::{LoginRequest, SignUpRequest, auth_service_client::AuthServiceClient},
    organizations::{
        AcceptInvitationRequest, CreateInvitationRequest, CreateOrganizationRequest,
        CreateProjectRequest, Invitation, ListActivitiesRequest, ListProjectsRequest, Organization,
        Project, activity_service_client::ActivityServiceClient,
        invitation_service_client::InvitationServiceClient,
        organization_service_client::OrganizationServiceClient,
        project_service_client::ProjectServiceClient,
    },
};
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A channel that calls as someone.
pub type Authed = InterceptedService<Channel, Bearer>;

/// The organization every scenario works in.
pub const ORGANIZATION: &str = "bench";

/// Connections to a control plane's gateway, and who calls.
pub struct Session {
    /// One per connection of the load.
    pub channels: Vec<Channel>,
    /// The organization's owner.
    pub owner: String,
    /// A member (role `member`) of the organization.
    pub member: String,
}

impl Session {
    /// `make` over every connection, calling with `token`.
    pub fn clients<C>(&self, token: &str, make: fn(Authed) -> C) -> Vec<C> {
        let bearer = Bearer(format!("Bearer {token}").parse().expect("tokens are ASCII"));
        self.channels
            .iter()
            .map(|channel| make(InterceptedService::new(channel.clone(), bearer.clone())))
            .collect()
    }

    /// One client calling with `token`.
    pub fn client<C>(&self, token: &str, make: fn(Authed) -> C) -> C {
        self.clients(token, make).swap_remove(0)
    }

    /// Signs the owner and the
    /// member up and makes the organization with the member in it.
    /// Connections are spread over `gateways`.
    pub async fn open(gateways: &[String], connections: usize) -> anyhow::Result<Self> {
        let mut channels = Vec::new();
        for (i, gateway) in gateways.iter().enumerate() {
            let share =
                connections / gateways.len() + usize::from(i < connections % gateways.len());
            channels.extend(crate::load::connect(gateway, share.max(1)).await?);
        }
        let owner = sign_up(&channels[0], "owner").await?;
        let member = sign_up(&channels[0], "member").await?;
        let session = Self {
            channels,
            owner,
            member,
        };
        session
            .client(&session.owner, OrganizationServiceClient::new)
            .create_organization(CreateOrganizationRequest {
                request_id: String::new(),
                organization: Some(Organization {
                    name: ORGANIZATION.into(),
                    ..Default::default()
                }),
            })
            .await?;
        session.join(&session.member, "member", "member").await?;
        Ok(session)
    }

    /// Invites `username` (whose token is `token`) to the organization with
    /// `role`, and accepts.
    async fn join(&self, token: &str, username: &str, role: &str) -> anyhow::Result<()> {
        let invited = self
            .client(&self.owner, InvitationServiceClient::new)
            .create_invitation(CreateInvitationRequest {
                request_id: String::new(),
                organization: ORGANIZATION.into(),
                invitation: Some(Invitation {
                    email: format!("{username}@example.com"),
                    role: role.into(),
                    ..Default::default()
                }),
            })
            .await?
            .into_inner();
        self.client(token, InvitationServiceClient::new)
            .accept_invitation(AcceptInvitationRequest {
                token: invited.token,
            })
            .await?;
        Ok(())
    }

    /// Tokens of `count` administrators of the organization (`watcher-0`,
    /// …; the role that reads its activity feed), made once: each principal
    /// may hold only so many streams open.
    pub async fn watchers(&self, count: usize) -> anyhow::Result<Vec<String>> {
        let mut tokens = Vec::with_capacity(count);
        for i in 0..count {
            let username = format!("watcher-{i}");
            let token = sign_up(&self.channels[0], &username).await?;
            self.join(&token, &username, "admin").await?;
            tokens.push(token);
        }
        Ok(tokens)
    }

    /// Makes `count` projects `p-000000`, … in the organization, 64 at a
    /// time; how long it took.
    pub async fn seed_projects(&self, count: u64) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let next = Arc::new(AtomicU64::new(0));
        let clients = self.clients(&self.owner, ProjectServiceClient::new);
        let mut tasks = Vec::new();
        for worker in 0..64 {
            let mut client = clients[worker % clients.len()].clone();
            let next = next.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        return anyhow::Ok(());
                    }
                    client
                        .create_project(CreateProjectRequest {
                            request_id: String::new(),
                            organization: ORGANIZATION.into(),
                            project: Some(Project {
                                name: format!("p-{n:06}"),
                                ..Default::default()
                            }),
                        })
                        .await?;
                }
            }));
        }
        for task in tasks {
            task.await??;
        }
        Ok(started.elapsed())
    }

    /// Waits until the activity feed shows at least `count` projects
    /// created (the seed's activities delivered from the outbox), for at
    /// most `patience`: what is measured next should not share the machine
    /// with that delivery. Whether they all arrived.
    pub async fn feed_caught_up(&self, count: u64, patience: Duration) -> anyhow::Result<bool> {
        let mut activities = self.client(&self.owner, ActivityServiceClient::new);
        let started = Instant::now();
        loop {
            let shown = activities
                .list_activities(ListActivitiesRequest {
                    organization: ORGANIZATION.into(),
                    page_size: 1,
                    filter: "action:created subject_kind:project".into(),
                    include_total_size: true,
                    ..Default::default()
                })
                .await?
                .into_inner()
                .total_size;
            if shown as u64 >= count {
                return Ok(true);
            }
            if started.elapsed() >= patience {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The page token of the projects after the first `rows` (by name).
    pub async fn page_token_after(&self, rows: u64) -> anyhow::Result<String> {
        let mut projects = self.client(&self.owner, ProjectServiceClient::new);
        let (mut seen, mut token) = (0, String::new());
        while seen < rows {
            let page = projects
                .list_projects(ListProjectsRequest {
                    organization: ORGANIZATION.into(),
                    page_size: (rows - seen).min(1000) as i32,
                    page_token: token,
                    ..Default::default()
                })
                .await?
                .into_inner();
            seen += page.projects.len() as u64;
            token = page.next_page_token;
            if token.is_empty() {
                bail!("only {seen} projects: seed more than {rows}");
            }
        }
        Ok(token)
    }
}

/// Signs `username` up (password `password-<username>`) and logs in.
async fn sign_up(channel: &Channel, username: &str) -> anyhow::Result<String> {
    let mut auth = AuthServiceClient::new(channel.clone());
    auth.sign_up(SignUpRequest {
        username: username.into(),
        email: format!("{username}@example.com"),
        password: format!("password-{username}"),
        display_name: String::new(),
    })
    .await
    .with_context(|| format!("signing {username} up"))?;
    Ok(auth
        .login(login(username))
        .await
        .with_context(|| format!("logging {username} in"))?
        .into_inner()
        .access_token)
}

/// `username`'s login.
pub fn login(username: &str) -> LoginRequest {
    LoginRequest {
        username: username.into(),
        password: format!("password-{username}"),
    }
}
