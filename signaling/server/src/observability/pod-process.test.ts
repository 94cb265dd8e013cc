import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { issueToken } from "../auth/index.ts";
import { RawClient } from "../testing/raw-client.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const SECRET = "pod-process-test-secret-0123456789abcdef";

interface Capture {
  url: string;
  bodies: unknown[];
  close(): Promise<void>;
}

/** A stand-in OTLP/HTTP collector: records every JSON body POSTed to /v1/traces. */
async function startCollector(): Promise<Capture> {
  const bodies: unknown[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.url === "/v1/traces") bodies.push(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, bodies, close: () => new Promise((r) => server.close(() => r())) };
}

function spanNames(bodies: unknown[]): string[] {
  const names: string[] = [];
  for (const body of bodies as Array<{ resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: Array<{ name: string }> }> }> }>) {
    for (const rs of body.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) names.push(s.name);
  }
  return names;
}

test("the pod process: OTLP traces of handshake, join and relay; SIGTERM drains and exits; no token in any log line", async (t) => {
  const collector = await startCollector();
  t.after(() => collector.close());
  const child = spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      SWITCHBOARD_PORT: "0",
      SWITCHBOARD_LOG_LEVEL: "debug",
      SWITCHBOARD_JWT_HS256_SECRET: SECRET,
      SWITCHBOARD_JWT_AUDIENCE: "switchboard",
      SWITCHBOARD_JWT_ISSUER: "tests",
      SWITCHBOARD_DRAIN_TIMEOUT_MS: "500",
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_BSP_SCHEDULE_DELAY: "50",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  t.after(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  let output = "";
  child.stdout.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr.on("data", (c: Buffer) => (output += c.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pod did not start:\n${output}`)), 15_000);
    child.stdout.on("data", () => {
      const m = /"msg":"listening"/.test(output) ? /"port":(\d+)/.exec(output) : null;
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });

  const base = { key: SECRET, alg: "HS256", aud: "switchboard", iss: "tests", rooms: ["*"], grants: ["join", "signal"] } as const;
  const tokenA = await issueToken({ ...base, sub: "alice" });
  const tokenB = await issueToken({ ...base, sub: "bob" });
  const forged = `${tokenA.slice(0, tokenA.lastIndexOf(".") + 1)}AAAAforgedsignatureAAAA`;
  const url = `ws://127.0.0.1:${port}/v1/ws`;

  const bad = new RawClient(url);
  await bad.opened();
  bad.send({ type: "hello", v: 1, token: forged });
  assert.equal((await bad.nextOf("error")).code, "SIG_ERR_AUTH_FAILED");
  await bad.closed;

  const a = new RawClient(url);
  const b = new RawClient(url);
  await a.hello(tokenA);
  const wb = await b.hello(tokenB);
  await a.request({ type: "join", room: "traced" });
  await b.request({ type: "join", room: "traced" });
  assert.equal((await a.request({ type: "offer", room: "traced", to: wb.peerId, sdp: "v=0\r\n" })).type, "ok");
  await b.nextOf("offer");

  child.kill("SIGTERM");
  const reconnect = await a.nextOf("reconnect");
  assert.equal(reconnect.reason, "draining");
  const exitCode = await new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  assert.equal(exitCode, 0, output);
  await Promise.all([a.closed, b.closed]);

  const names = spanNames(collector.bodies);
  for (const expected of ["switchboard.handshake", "switchboard.join", "switchboard.relay"]) {
    assert.ok(names.includes(expected), `span ${expected} exported; got ${names.join(", ")}`);
  }
  for (const secret of [tokenA, tokenB, forged, SECRET]) assert.ok(!output.includes(secret), "a token or secret leaked into the logs");
  assert.match(output, /"msg":"stopped"/);
});
