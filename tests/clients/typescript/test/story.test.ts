/**
 * The whole user story, from a TypeScript client generated from proto/:
 * two people sign up, one creates an organization and invites the other,
 * projects are paged, a team's grant lifts the second person's role on one
 * project, models and components move through stages, an agent leases and
 * finishes a submitted run, and the activity feed is listed, watched and
 * counted. Errors are read from their `google.rpc.Status` details.
 *
 * The steps run in order and share what earlier steps made.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";

import { AgentService } from "../gen/orgplane/agents/v1/agents_pb.js";
import { QueueService } from "../gen/orgplane/agents/v1/queues_pb.js";
import { RunService } from "../gen/orgplane/agents/v1/runs_pb.js";
import { AuthService } from "../gen/orgplane/identity/v1/auth_pb.js";
import { UserService } from "../gen/orgplane/identity/v1/users_pb.js";
import { ActivityService } from "../gen/orgplane/organizations/v1/activities_pb.js";
import { InvitationService } from "../gen/orgplane/organizations/v1/invitations_pb.js";
import { OrganizationService } from "../gen/orgplane/organizations/v1/organizations_pb.js";
import { ProjectService } from "../gen/orgplane/organizations/v1/projects_pb.js";
import { EntityKind } from "../gen/orgplane/organizations/v1/resources_pb.js";
import { TeamService } from "../gen/orgplane/organizations/v1/teams_pb.js";
import { ComponentHubService } from "../gen/orgplane/registry/v1/components_pb.js";
import { ModelRegistryService } from "../gen/orgplane/registry/v1/models_pb.js";
import { Session, transport, transportName, unique } from "../src/client.js";
import { failure } from "../src/errors.js";

const COMPONENT = `version: 1.1
kind: component
name: train
run:
  kind: job
  container:
    image: python:3.12
`;

/** Signs up `username` and logs in: a session acting as them. */
async function person(username: string): Promise<Session> {
  const auth = createClient(AuthService, transport());
  const password = `${username} password`;
  await auth.signUp({ username, email: `${username}@example.com`, password });
  const login = await auth.login({ username, password });
  assert.ok(login.accessToken, "login answers an access token");
  return new Session(login.accessToken);
}

describe(`the user story over ${transportName}`, () => {
  const alice = unique("alice");
  const bob = unique("bob");
  const org = unique("org");
  let owner: Session;
  let member: Session;
  let agentToken: string;
  let watch: AbortController;

  before(async () => {
    owner = await person(alice);
    member = await person(bob);
  });

  after(() => watch?.abort());

  test("a person reads who they are", async () => {
    const me = await owner.client(UserService).getCurrentUser({});
    assert.equal(me.user?.username, alice);
    assert.equal(me.user?.email, `${alice}@example.com`);
  });

  test("the owner creates an organization and invites the second person, who accepts", async () => {
    const created = await owner.client(OrganizationService).createOrganization({
      organization: { name: org, displayName: "Vision Lab" },
    });
    assert.equal(created.organization?.name, org);
    assert.equal(created.organization?.role, "owner");

    const invited = await owner.client(InvitationService).createInvitation({
      organization: org,
      invitation: { email: `${bob}@example.com`, role: "member" },
    });
    assert.ok(invited.token, "the invitation's token is shown once");
    const accepted = await member
      .client(InvitationService)
      .acceptInvitation({ token: invited.token });
    assert.equal(accepted.organization, org);
    assert.equal(accepted.member?.role, "member");

    const mine = await member.client(OrganizationService).listOrganizations({});
    assert.deepEqual(
      mine.organizations.map((o) => o.name),
      [org],
    );
  });

  test("projects are listed a page at a time, with the total", async () => {
    const projects = owner.client(ProjectService);
    for (const name of ["vision", "speech"]) {
      await projects.createProject({ organization: org, project: { name } });
    }
    const first = await projects.listProjects({
      organization: org,
      pageSize: 1,
      includeTotalSize: true,
    });
    assert.equal(first.totalSize, 2n);
    assert.deepEqual(
      first.projects.map((p) => p.name),
      ["speech"],
    );
    assert.ok(first.nextPageToken, "a second page follows");
    const second = await projects.listProjects({
      organization: org,
      pageSize: 1,
      pageToken: first.nextPageToken,
    });
    assert.deepEqual(
      second.projects.map((p) => p.name),
      ["vision"],
    );
    assert.equal(second.nextPageToken, "", "the last page has no next token");
  });

  test("a team's grant lets a member change one project, with its etag and a field mask", async () => {
    const update = async (etag: string) =>
      member.client(ProjectService).updateProject({
        organization: org,
        project: { name: "vision", description: "object detection", etag },
        updateMask: create(FieldMaskSchema, { paths: ["description"] }),
      });
    const read = await member
      .client(ProjectService)
      .getProject({ organization: org, project: "vision" });
    const etag = read.project?.etag ?? "";

    const tooWeak = await failure(() => update(etag));
    assert.equal(tooWeak.code, Code.PermissionDenied);
    assert.equal(tooWeak.reason, "ROLE_TOO_WEAK");

    const teams = owner.client(TeamService);
    const team = await teams.createTeam({
      organization: org,
      team: {
        name: "ml",
        grants: [{ kind: EntityKind.PROJECT, name: "vision", role: "admin" }],
      },
    });
    assert.equal(team.team?.grants[0]?.role, "admin");
    await teams.addTeamMember({
      organization: org,
      team: "ml",
      member: { user: bob, role: "admin" },
    });

    const updated = await update(etag);
    assert.equal(updated.project?.description, "object detection");
    assert.notEqual(updated.project?.etag, etag, "a change makes a new etag");

    const stale = await failure(() => update(etag));
    assert.equal(stale.code, Code.Aborted, "the old etag is stale");
    assert.equal(stale.reason, "STALE_ETAG");
  });

  test("a model version and a component version move through stages", async () => {
    const models = owner.client(ModelRegistryService);
    await models.createModel({ organization: org, model: { name: "detector" } });
    await models.createModelVersion({
      organization: org,
      model: "detector",
      version: { name: "v1", project: "vision" },
    });
    const staged = await models.transitionModelVersionStage({
      organization: org,
      model: "detector",
      version: "v1",
      stage: "staging",
      condition: { reason: "Evaluated", message: "mAP 0.61" },
    });
    assert.equal(staged.version?.stage, "staging");
    assert.equal(staged.version?.stageCondition?.actor, alice);

    const hub = owner.client(ComponentHubService);
    await hub.createComponent({ organization: org, component: { name: "trainer" } });
    await hub.createComponentVersion({
      organization: org,
      component: "trainer",
      version: { name: "v1", content: COMPONENT },
    });
    const released = await hub.transitionComponentVersionStage({
      organization: org,
      component: "trainer",
      version: "v1",
      stage: "production",
      condition: { reason: "Released" },
    });
    assert.equal(released.version?.stage, "production");
  });

  test("an agent with its own token leases a submitted run and finishes it", async () => {
    const agent = await owner
      .client(AgentService)
      .createAgent({ organization: org, agent: { name: "box", namespace: "ml" } });
    agentToken = agent.token;
    assert.ok(agentToken, "the agent's token is shown once");
    await owner.client(QueueService).createQueue({
      organization: org,
      agent: "box",
      queue: { name: "gpu", resource: "gpu", quota: 4 },
    });

    const submitted = await member.client(RunService).submitRun({
      organization: org,
      project: "vision",
      queue: "box/gpu",
      name: "train",
      spec: { kind: "job", resources: { gpu: 2 } },
    });
    assert.equal(submitted.run?.status, "queued");

    const runs = new Session(agentToken).client(RunService);
    const leased = await runs.acquireRuns({
      organization: org,
      agent: "box",
      maxRuns: 5,
      leaseDuration: { seconds: 30n },
    });
    assert.deepEqual(
      leased.runs.map((r) => r.uuid),
      [submitted.run?.uuid],
    );
    assert.deepEqual(leased.runs[0]?.spec, { kind: "job", resources: { gpu: 2 } });
    const done = await runs.reportRunStatus({
      organization: org,
      run: submitted.run?.uuid ?? "",
      lease: leased.runs[0]?.lease?.id ?? "",
      status: "succeeded",
    });
    assert.equal(done.run?.status, "succeeded");

    const refused = await failure(() =>
      member.client(RunService).acquireRuns({ organization: org, agent: "box", maxRuns: 1 }),
    );
    assert.equal(refused.code, Code.PermissionDenied, "people do not lease runs");
  });

  test("the activity feed is listed, watched as it grows, and counted", async () => {
    const activities = owner.client(ActivityService);
    // The registry and the agents service record theirs in the background:
    // the feed has them within moments.
    const expected = ["project/vision", "team/ml", "model/detector", "agent/box", "run/train"];
    let subjects = new Set<string>();
    for (let tries = 0; tries < 50; tries++) {
      const listed = await activities.listActivities({ organization: org, pageSize: 100 });
      subjects = new Set(listed.activities.map((a) => `${a.subjectKind}/${a.subjectName}`));
      if (expected.every((subject) => subjects.has(subject))) {
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    for (const subject of expected) {
      assert.ok(subjects.has(subject), `${subject} in ${[...subjects].join(", ")}`);
    }

    // The stream starts from "now" once its headers arrive; activities the
    // registry and agents record late may come before the new project's.
    watch = new AbortController();
    const giveUp = setTimeout(() => watch.abort(), 10_000);
    let started: () => void = () => {};
    const headers = new Promise<void>((resolve) => (started = resolve));
    const stream = activities
      .watchActivities(
        { organization: org },
        { signal: watch.signal, onHeader: () => started() },
      )
      [Symbol.asyncIterator]();
    let next = stream.next();
    await headers;
    await owner.client(ProjectService).createProject({ organization: org, project: { name: "audio" } });
    for (;;) {
      const seen = await next;
      assert.equal(seen.done, false, "the stream goes on");
      const activity = seen.value.activity;
      if (activity?.subjectKind === "project" && activity.subjectName === "audio") {
        assert.equal(activity.actor, alice);
        assert.ok(seen.value.cursor, "each message carries a cursor to resume from");
        break;
      }
      next = stream.next();
    }
    clearTimeout(giveUp);
    watch.abort();

    const stats = await activities.getOrganizationStats({ organization: org });
    const counts = new Map(stats.counts.map((c) => [c.name, c.value]));
    const shown = [...counts].map(([name, value]) => `${name}=${value}`).join(" ");
    assert.equal(counts.get("projects"), 3n, shown);
    assert.equal(counts.get("members"), 2n, shown);
    assert.equal(counts.get("runs.succeeded"), 1n, shown);
  });

  test("a bad request names each bad field (google.rpc.BadRequest)", async () => {
    const bad = await failure(() =>
      owner.client(ProjectService).createProject({
        organization: org,
        project: { name: "Not A Slug!" },
      }),
    );
    assert.equal(bad.code, Code.InvalidArgument);
    assert.ok(bad.fields.has("project.name"), JSON.stringify([...bad.fields]));

    const signUp = await failure(() =>
      createClient(AuthService, transport()).signUp({
        username: unique("carol"),
        email: "not an email",
        password: "carol password",
      }),
    );
    assert.equal(signUp.code, Code.InvalidArgument);
    assert.ok(signUp.fields.has("email"), JSON.stringify([...signUp.fields]));
  });

  test("missing, wrong and insufficient credentials say why (google.rpc.ErrorInfo)", async () => {
    const anonymous = await failure(() =>
      createClient(UserService, transport()).getCurrentUser({}),
    );
    assert.equal(anonymous.code, Code.Unauthenticated, anonymous.message);
    assert.equal(anonymous.reason, "MISSING_CREDENTIALS");

    const wrong = await failure(() =>
      createClient(AuthService, transport()).login({ username: alice, password: "not it" }),
    );
    assert.equal(wrong.code, Code.Unauthenticated);
    assert.equal(wrong.reason, "INVALID_CREDENTIALS");

    const stranger = await person(unique("dave"));
    const hidden = await failure(() =>
      stranger.client(OrganizationService).getOrganization({ organization: org }),
    );
    assert.equal(hidden.code, Code.NotFound, "another organization does not exist for a stranger");

    const notOwner = await failure(() =>
      member.client(TeamService).createTeam({ organization: org, team: { name: "rogue" } }),
    );
    assert.equal(notOwner.code, Code.PermissionDenied);
    assert.equal(notOwner.reason, "ROLE_TOO_WEAK");
  });
});
