/**
 * The browser check's page: the same generated client, bundled for the
 * browser with Connect-ES's gRPC-Web transport (fetch). It logs in and reads
 * the current user through the gateway named by `?gateway=`, then writes
 * the outcome into `#result` for the check to read.
 */
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

import { AuthService } from "../gen/orgplane/identity/v1/auth_pb.js";
import { UserService } from "../gen/orgplane/identity/v1/users_pb.js";

const params = new URLSearchParams(location.search);
const baseUrl = params.get("gateway") ?? "";
const username = params.get("username") ?? "";
const password = params.get("password") ?? "";
const result = document.getElementById("result") as HTMLElement;

async function run(): Promise<string> {
  const auth = createClient(AuthService, createGrpcWebTransport({ baseUrl }));
  const login = await auth.login({ username, password });
  const users = createClient(
    UserService,
    createGrpcWebTransport({
      baseUrl,
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${login.accessToken}`);
          return next(req);
        },
      ],
    }),
  );
  const me = await users.getCurrentUser({});
  return me.user?.username ?? "";
}

run().then(
  (name) => {
    result.dataset.status = "ok";
    result.textContent = name;
  },
  (error: unknown) => {
    result.dataset.status = "failed";
    result.textContent = String(error);
  },
);
