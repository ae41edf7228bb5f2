"""Python client suite, agents and runs: an agent written in Python leases
the runs a user submits, with its own token, as an agent SDK would.
"""

import os
import unittest
import uuid

import grpc
from google.protobuf import duration_pb2, struct_pb2

from orgplane.agents.v1 import agents_pb2, agents_pb2_grpc
from orgplane.agents.v1 import queues_pb2, queues_pb2_grpc
from orgplane.agents.v1 import resources_pb2 as agent_resources_pb2
from orgplane.agents.v1 import runs_pb2, runs_pb2_grpc
from orgplane.identity.v1 import auth_pb2, auth_pb2_grpc
from orgplane.organizations.v1 import organizations_pb2, organizations_pb2_grpc
from orgplane.organizations.v1 import projects_pb2, projects_pb2_grpc
from orgplane.organizations.v1 import resources_pb2 as org_resources_pb2

GATEWAY = os.environ.get("ORGPLANE_GATEWAY", "127.0.0.1:50051")


def bearer(token):
    return (("authorization", f"Bearer {token}"),)


class RunsFromPython(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.channel = grpc.insecure_channel(GATEWAY)
        auth = auth_pb2_grpc.AuthServiceStub(cls.channel)
        name = "py-" + uuid.uuid4().hex[:12]
        auth.SignUp(
            auth_pb2.SignUpRequest(
                username=name, email=f"{name}@example.com", password="python password"
            )
        )
        cls.token = auth.Login(
            auth_pb2.LoginRequest(username=name, password="python password")
        ).access_token
        cls.org = "org-" + uuid.uuid4().hex[:10]
        user = bearer(cls.token)
        organizations_pb2_grpc.OrganizationServiceStub(cls.channel).CreateOrganization(
            organizations_pb2.CreateOrganizationRequest(
                organization=org_resources_pb2.Organization(name=cls.org)
            ),
            metadata=user,
        )
        projects_pb2_grpc.ProjectServiceStub(cls.channel).CreateProject(
            projects_pb2.CreateProjectRequest(
                organization=cls.org, project=org_resources_pb2.Project(name="vision")
            ),
            metadata=user,
        )
        cls.agent_token = agents_pb2_grpc.AgentServiceStub(cls.channel).CreateAgent(
            agents_pb2.CreateAgentRequest(
                organization=cls.org, agent=agent_resources_pb2.Agent(name="box")
            ),
            metadata=user,
        ).token
        queues_pb2_grpc.QueueServiceStub(cls.channel).CreateQueue(
            queues_pb2.CreateQueueRequest(
                organization=cls.org,
                agent="box",
                queue=agent_resources_pb2.Queue(name="gpu", resource="gpu", quota=4),
            ),
            metadata=user,
        )
        cls.runs = runs_pb2_grpc.RunServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()

    def test_an_agent_leases_and_finishes_a_submitted_run(self):
        spec = struct_pb2.Struct()
        spec.update({"kind": "job", "resources": {"gpu": 2}})
        submitted = self.runs.SubmitRun(
            runs_pb2.SubmitRunRequest(
                organization=self.org, project="vision", queue="box/gpu", name="train", spec=spec
            ),
            metadata=bearer(self.token),
        ).run
        self.assertEqual((submitted.status, submitted.queue), ("queued", "box/gpu"))

        agent = bearer(self.agent_token)
        leased = self.runs.AcquireRuns(
            runs_pb2.AcquireRunsRequest(
                organization=self.org,
                agent="box",
                max_runs=5,
                lease_duration=duration_pb2.Duration(seconds=30),
            ),
            metadata=agent,
        ).runs
        self.assertEqual([r.uuid for r in leased], [submitted.uuid])
        self.assertEqual(leased[0].spec["resources"]["gpu"], 2)
        done = self.runs.ReportRunStatus(
            runs_pb2.ReportRunStatusRequest(
                organization=self.org,
                run=submitted.uuid,
                lease=leased[0].lease.id,
                status="succeeded",
            ),
            metadata=agent,
        ).run
        self.assertEqual(done.status, "succeeded")

    def test_people_may_not_lease_runs(self):
        with self.assertRaises(grpc.RpcError) as denied:
            self.runs.AcquireRuns(
                runs_pb2.AcquireRunsRequest(organization=self.org, agent="box", max_runs=1),
                metadata=bearer(self.token),
            )
        self.assertEqual(denied.exception.code(), grpc.StatusCode.PERMISSION_DENIED)

    def test_a_run_asking_more_than_the_quota_is_refused(self):
        spec = struct_pb2.Struct()
        spec.update({"resources": {"gpu": 8}})
        with self.assertRaises(grpc.RpcError) as refused:
            self.runs.SubmitRun(
                runs_pb2.SubmitRunRequest(
                    organization=self.org, project="vision", queue="box/gpu", spec=spec
                ),
                metadata=bearer(self.token),
            )
        self.assertEqual(refused.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)


if __name__ == "__main__":
    unittest.main()
