/**
 * The browser check: headless Chromium loads a page bundled from the
 * generated client (browser/page.ts) and calls `Login` and
 * `GetCurrentUser` through the gateway over gRPC-Web (fetch), across
 * origins, as a web console served from its own origin would.
 *
 * The gateway runs with `--cors-origin http://127.0.0.1:<page port>`: the
 * page served from that origin gets its answer; the same page served from
 * `http://localhost:<page port>` — another origin, not listed — is refused
 * by the browser.
 *
 * Environment: ORGPLANE_GATEWAY (http://host:port), ORGPLANE_PAGE_PORT (the
 * port the gateway's allow-list names), CHROMIUM (default /usr/bin/chromium).
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { type Server, createServer, request } from "node:http";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { createClient } from "@connectrpc/connect";
import { type Browser, chromium } from "playwright-core";

import { AuthService } from "../gen/orgplane/identity/v1/auth_pb.js";
import { gateway, transport, unique } from "../src/client.js";

const pagePort = Number(process.env.ORGPLANE_PAGE_PORT ?? "0");
const allowedOrigin = `http://127.0.0.1:${pagePort}`;
const otherOrigin = `http://localhost:${pagePort}`;

/** The page and its bundle, from the folder the build wrote. */
const files: Record<string, [string, string]> = {
  "/index.html": ["browser/index.html", "text/html"],
  "/page.js": ["dist/browser/page.js", "text/javascript"],
};

function servePage(): Promise<Server> {
  const root = fileURLToPath(new URL("../../", import.meta.url));
  const server = createServer(async (req, res) => {
    const file = files[new URL(req.url ?? "/", "http://page").pathname];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": file[1] });
    res.end(await readFile(root + file[0]));
  });
  return new Promise((resolve) => server.listen(pagePort, "127.0.0.1", () => resolve(server)));
}

/** The gateway's answer to a browser's preflight from `origin`. */
function preflight(origin: string): Promise<Record<string, string | string[] | undefined>> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${gateway}/orgplane.identity.v1.UserService/GetCurrentUser`,
      {
        method: "OPTIONS",
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization,content-type,x-grpc-web,x-user-agent",
        },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ status: String(res.statusCode), ...res.headers }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

describe("a browser calls the gateway over gRPC-Web", () => {
  const username = unique("browser");
  const password = `${username} password`;
  let server: Server;
  let browser: Browser;

  before(async () => {
    assert.ok(pagePort > 0, "ORGPLANE_PAGE_PORT names the port the gateway allows");
    await createClient(AuthService, transport()).signUp({
      username,
      email: `${username}@example.com`,
      password,
    });
    server = await servePage();
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      // As root in CI, without the background requests this closed
      // network refuses.
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  });

  after(async () => {
    await browser?.close();
    server?.close();
  });

  /** Loads the page from `origin` and returns what it wrote. */
  async function load(origin: string): Promise<{ status?: string; text: string }> {
    const page = await browser.newPage();
    try {
      const query = new URLSearchParams({ gateway, username, password });
      await page.goto(`${origin}/index.html?${query}`);
      const result = page.locator("#result[data-status]");
      await result.waitFor({ timeout: 15_000 });
      return {
        status: (await result.getAttribute("data-status")) ?? undefined,
        text: (await result.textContent()) ?? "",
      };
    } finally {
      await page.close();
    }
  }

  test("the preflight names a listed origin and no other", async () => {
    const allowed = await preflight(allowedOrigin);
    assert.equal(allowed["access-control-allow-origin"], allowedOrigin);
    assert.match(String(allowed["access-control-allow-headers"]), /authorization/);
    const other = await preflight(otherOrigin);
    assert.equal(other["access-control-allow-origin"], undefined);
  });

  test("a page on a listed origin logs in and reads the current user", async () => {
    const result = await load(allowedOrigin);
    assert.deepEqual(result, { status: "ok", text: username });
  });

  test("the same page on an origin not listed is refused by the browser", async () => {
    const result = await load(otherOrigin);
    assert.equal(result.status, "failed", result.text);
  });
});
