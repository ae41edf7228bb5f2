"""Python client suite: stubs generated from proto/ with grpcio-tools, calling
a running gateway as an SDK would. Reflection is read with grpcio's client,
which speaks grpc.reflection.v1alpha.

Run by `run.sh` (which generates the stubs and starts `orgplane dev`), or by
hand against any gateway with ORGPLANE_GATEWAY=host:port,
ORGPLANE_ADMIN_PASSWORD and the stubs on PYTHONPATH.
"""

import os
import unittest
import uuid

import grpc
from google.protobuf import field_mask_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from orgplane.identity.v1 import auth_pb2, auth_pb2_grpc, users_pb2, users_pb2_grpc
from orgplane.identity.v1 import tokens_pb2, tokens_pb2_grpc, resources_pb2

GATEWAY = os.environ.get("ORGPLANE_GATEWAY", "127.0.0.1:50051")
ADMIN_PASSWORD = os.environ["ORGPLANE_ADMIN_PASSWORD"]


def bearer(token):
    return (("authorization", f"Bearer {token}"),)


class IdentityFromPython(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.channel = grpc.insecure_channel(GATEWAY)
        cls.auth = auth_pb2_grpc.AuthServiceStub(cls.channel)
        cls.users = users_pb2_grpc.UserServiceStub(cls.channel)
        cls.tokens = tokens_pb2_grpc.TokenServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()

    def test_reflection_v1alpha_lists_public_services_only(self):
        services = ProtoReflectionDescriptorDatabase(self.channel).get_services()
        self.assertIn("orgplane.identity.v1.AuthService", services)
        self.assertIn("orgplane.agents.v1.RunService", services)
        self.assertFalse([s for s in services if s.endswith("Internal")], services)

    def test_sign_up_log_in_and_use_a_personal_token(self):
        name = "py-" + uuid.uuid4().hex[:12]
        self.auth.SignUp(
            auth_pb2.SignUpRequest(
                username=name, email=f"{name}@example.com", password="python password"
            )
        )
        login = self.auth.Login(auth_pb2.LoginRequest(username=name, password="python password"))
        me = self.users.GetCurrentUser(
            users_pb2.GetCurrentUserRequest(), metadata=bearer(login.access_token)
        )
        self.assertEqual(me.user.username, name)
        created = self.tokens.CreateToken(
            tokens_pb2.CreateTokenRequest(token=resources_pb2.Token(name="py", scopes=["read"])),
            metadata=bearer(login.access_token),
        )
        self.assertTrue(created.key.startswith("opp_"))
        again = self.users.GetCurrentUser(
            users_pb2.GetCurrentUserRequest(), metadata=bearer(created.key)
        )
        self.assertEqual(again.user.uuid, me.user.uuid)
        with self.assertRaises(grpc.RpcError) as denied:
            self.users.UpdateCurrentUser(
                users_pb2.UpdateCurrentUserRequest(
                    user=resources_pb2.User(display_name="nope"),
                    update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
                ),
                metadata=bearer(created.key),
            )
        self.assertEqual(denied.exception.code(), grpc.StatusCode.PERMISSION_DENIED)

    def test_errors_have_grpc_codes(self):
        with self.assertRaises(grpc.RpcError) as missing:
            self.users.GetCurrentUser(users_pb2.GetCurrentUserRequest())
        self.assertEqual(missing.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        with self.assertRaises(grpc.RpcError) as bad:
            self.auth.SignUp(auth_pb2.SignUpRequest(username="", email="x", password="short"))
        self.assertEqual(bad.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        details = dict(bad.exception.trailing_metadata() or ())
        self.assertIn("grpc-status-details-bin", details, "google.rpc.Status details are sent")

    def test_the_admin_lists_users(self):
        login = self.auth.Login(auth_pb2.LoginRequest(username="admin", password=ADMIN_PASSWORD))
        page = self.users.ListUsers(
            users_pb2.ListUsersRequest(page_size=1), metadata=bearer(login.access_token)
        )
        self.assertEqual(len(page.users), 1)
        self.assertGreaterEqual(page.total_size, 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
