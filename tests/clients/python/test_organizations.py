"""Python client suite, organizations: an organization with a project, and
a service account acting in it with its own token, as an SDK would use them.
"""

import os
import unittest
import uuid

import grpc

from orgplane.identity.v1 import auth_pb2, auth_pb2_grpc, resources_pb2
from orgplane.identity.v1 import service_accounts_pb2, service_accounts_pb2_grpc
from orgplane.organizations.v1 import organizations_pb2, organizations_pb2_grpc
from orgplane.organizations.v1 import projects_pb2, projects_pb2_grpc
from orgplane.organizations.v1 import resources_pb2 as org_resources_pb2

GATEWAY = os.environ.get("ORGPLANE_GATEWAY", "127.0.0.1:50051")


def bearer(token):
    return (("authorization", f"Bearer {token}"),)


class OrganizationsFromPython(unittest.TestCase):
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
        cls.orgs = organizations_pb2_grpc.OrganizationServiceStub(cls.channel)
        cls.projects = projects_pb2_grpc.ProjectServiceStub(cls.channel)
        cls.accounts = service_accounts_pb2_grpc.ServiceAccountServiceStub(cls.channel)
        cls.orgs.CreateOrganization(
            organizations_pb2.CreateOrganizationRequest(
                organization=org_resources_pb2.Organization(name=cls.org)
            ),
            metadata=bearer(cls.token),
        )

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()

    def test_a_service_account_lists_projects_but_may_not_create_them(self):
        self.projects.CreateProject(
            projects_pb2.CreateProjectRequest(
                organization=self.org, project=org_resources_pb2.Project(name="vision")
            ),
            metadata=bearer(self.token),
        )
        self.accounts.CreateServiceAccount(
            service_accounts_pb2.CreateServiceAccountRequest(
                organization=self.org,
                service_account=resources_pb2.ServiceAccount(name="nightly", role="member"),
            ),
            metadata=bearer(self.token),
        )
        key = self.accounts.CreateServiceAccountToken(
            service_accounts_pb2.CreateServiceAccountTokenRequest(
                organization=self.org,
                service_account="nightly",
                token=resources_pb2.Token(name="ci"),
            ),
            metadata=bearer(self.token),
        ).key
        self.assertTrue(key.startswith("opa_"))
        listed = self.projects.ListProjects(
            projects_pb2.ListProjectsRequest(organization=self.org), metadata=bearer(key)
        )
        self.assertEqual([p.name for p in listed.projects], ["vision"])
        with self.assertRaises(grpc.RpcError) as denied:
            self.projects.CreateProject(
                projects_pb2.CreateProjectRequest(
                    organization=self.org, project=org_resources_pb2.Project(name="other")
                ),
                metadata=bearer(key),
            )
        self.assertEqual(denied.exception.code(), grpc.StatusCode.PERMISSION_DENIED)

    def test_another_organization_does_not_exist_for_a_stranger(self):
        with self.assertRaises(grpc.RpcError) as missing:
            self.orgs.GetOrganization(
                organizations_pb2.GetOrganizationRequest(organization="no-such-org-here"),
                metadata=bearer(self.token),
            )
        self.assertEqual(missing.exception.code(), grpc.StatusCode.NOT_FOUND)


if __name__ == "__main__":
    unittest.main()
