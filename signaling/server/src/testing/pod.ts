/**
 * Test harness of the pod suites: a real pod on 127.0.0.1 port 0 with every client it hands out
 * torn down in `t.after`, JWT helpers, a Prometheus text reader and a bounded `eventually`.
 * Tests only.
 */
import type { TestContext } from "node:test";
import type { ServerMessageOf } from "@switchboard/protocol";
import { createSignalingServer, type SignalingServer } from "../app.ts";
import { issueToken, type Grant } from "../auth/index.ts";
import type { ConfigInput } from "../config.ts";
import { RawClient } from "./raw-client.ts";

/** HS256 secret, audience and issuer of {@link JWT_AUTH}. */
export const TEST_HS_SECRET = "pod-test-secret-0123456789-abcdefghij";
export const TEST_AUDIENCE = "switchboard";
export const TEST_ISSUER = "https://issuer.pod.test";

/** `config.auth` verifying HS256 tokens made by {@link jwt}. */
export const JWT_AUTH = { mode: "jwt", hs256Secret: TEST_HS_SECRET, audience: TEST_AUDIENCE, issuer: TEST_ISSUER } as const;

/** A signed token for `sub`: every grant and every room unless overridden; 1 h by default. */
export function jwt(sub: string, options: { rooms?: string[]; grants?: Grant[]; expiresInSec?: number | null; nowMs?: number } = {}): Promise<string> {
  return issueToken({
    key: TEST_HS_SECRET,
    alg: "HS256",
    sub,
    aud: TEST_AUDIENCE,
    iss: TEST_ISSUER,
    rooms: options.rooms ?? ["*"],
    grants: options.grants ?? ["join", "signal", "broadcast", "call"],
    expiresInSec: options.expiresInSec === undefined ? 3600 : options.expiresInSec,
    ...(options.nowMs === undefined ? {} : { nowMs: options.nowMs }),
  });
}

/** A client with its open session. */
export interface Peer {
  readonly client: RawClient;
  readonly welcome: ServerMessageOf<"welcome">;
  readonly peerId: string;
}

/** A listening pod and the clients connected to it in one test. */
export class TestPod {
  readonly server: SignalingServer;
  readonly #clients = new Set<RawClient>();

  constructor(server: SignalingServer) {
    this.server = server;
  }

  /** A new client socket to the pod (not yet open); dropped when the test ends. */
  connect(options: ConstructorParameters<typeof RawClient>[1] = {}): RawClient {
    const client = new RawClient(this.server.wsUrl, options);
    this.#clients.add(client);
    void client.closed.then(() => this.#clients.delete(client));
    return client;
  }

  /** A client with a session (`hello` with `token`, which is the user id in insecure-dev mode). */
  async open(token: string, extra: Record<string, unknown> = {}): Promise<Peer> {
    const client = this.connect();
    const welcome = await client.hello(token, extra);
    return { client, welcome, peerId: welcome.peerId };
  }

  /** A client with a session that joined `room`; resolves once the `joined` reply arrived. */
  async member(token: string, room: string, meta: Record<string, unknown> = {}): Promise<Peer & { joined: ServerMessageOf<"joined"> }> {
    const peer = await this.open(token);
    const joined = (await peer.client.request({ type: "join", room, meta })) as ServerMessageOf<"joined">;
    if (joined.type !== "joined") throw new Error(`join refused: ${JSON.stringify(joined)}`);
    return { ...peer, joined };
  }

  /** GET/POST/DELETE on the pod's HTTP port; resolves status and parsed (or raw) body. */
  async http(path: string, init: RequestInit = {}): Promise<{ status: number; body: unknown; text: string }> {
    const res = await fetch(`${this.server.httpUrl}${path}`, init);
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON (metrics)
    }
    return { status: res.status, body, text };
  }

  /** The current Prometheus exposition. */
  async metrics(): Promise<string> {
    return (await this.server.metrics.render()).body;
  }

  /** Drops every client, then closes the pod. */
  async close(): Promise<void> {
    for (const c of this.#clients) c.drop();
    await this.server.close();
  }
}

/**
 * Starts a pod on 127.0.0.1 port 0 with insecure-dev auth and silent logs unless overridden;
 * the pod and its clients are closed in `t.after`.
 */
export async function startPod(t: TestContext, config: Partial<ConfigInput> = {}, options: { defaultMetrics?: boolean } = {}): Promise<TestPod> {
  const server = createSignalingServer({
    config: { port: 0, logLevel: "silent", auth: { mode: "insecure-dev" }, ...config } as ConfigInput,
    defaultMetrics: options.defaultMetrics ?? false,
  });
  await server.listen();
  const pod = new TestPod(server);
  t.after(() => pod.close());
  return pod;
}

/**
 * Polls `check` until it returns true (for server-side state that has no event to await, such as
 * a socket's close being processed). Rejects after `timeoutMs`.
 */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * The value of the sample `name` whose labels include `labels`, from Prometheus text; 0 when
 * there is no such sample.
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const pair of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) found[pair[1] as string] = pair[2] as string;
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(m[3]);
  }
  return 0;
}

/** The client's close code and reason, once it closed; rejects if it has not closed within `timeoutMs`. */
export async function closedWithin(client: RawClient, timeoutMs = 3000): Promise<{ code: number; reason: string }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`socket not closed within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([client.closed, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
