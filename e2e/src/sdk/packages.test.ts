/**
 * The SDK as app developers get it: `npm run sdk:pack`'s tarballs, installed into scratch projects
 * outside the workspace (the examples/ folders), type-checked by their own `tsc` against the
 * packed types, and run: the browser example bundled by esbuild makes a call through a real pod in
 * Chromium; the Node bot runs on the system Node 20 (with the ws package) and on Node 24 (its
 * global WebSocket). Runs in the browser tests' loopback-only network namespace; the scratch
 * installs come from npm's cache (scratch.ts).
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { readFile, mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { SwitchboardClient, type ClientEvents } from "@switchboard/client";
import { formatPackReport, kib, packSdk, run, type PackedPackage, type PackedSdk } from "../../../scripts/sdk/pack.ts";
import { CLIENT_BUNDLE_BUDGET_GZIP_BYTES, WHOLE_CLIENT_ENTRY, assertWithinBudget, formatSizeReport, measureBundle } from "../../../scripts/sdk/size.ts";
import { launchChromium } from "../browser/chromium.ts";
import { startPod } from "../browser/pod.ts";
import { makeScratchProject, scratchEnv } from "./scratch.ts";

/** The system Node the SDK must keep working on (the oldest in its `engines`). */
const NODE20 = process.env["SWITCHBOARD_NODE20"] ?? "/usr/bin/node";

let scratch: string;
let sdk: PackedSdk;
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), "switchboard-sdk-"));
  const started = performance.now();
  sdk = await packSdk(join(scratch, "packs"));
  console.log(`# npm run sdk:pack: ${(performance.now() - started).toFixed(0)} ms\n${formatPackReport(sdk).replace(/^/gm, "# ")}`);
});
after(() => rm(scratch, { recursive: true, force: true }));

/** The packed manifest and file list of a tarball. */
async function packedManifest(pkg: PackedPackage): Promise<Record<string, unknown>> {
  const { code, stdout, output } = await run("tar", ["-xzOf", pkg.file, "package/package.json"], scratch);
  assert.equal(code, 0, output);
  return JSON.parse(stdout) as Record<string, unknown>;
}

async function packedText(pkg: PackedPackage, path: string): Promise<string> {
  const { code, stdout, output } = await run("tar", ["-xzOf", pkg.file, `package/${path}`], scratch);
  assert.equal(code, 0, output);
  return stdout;
}

describe("npm pack of the SDK", () => {
  test("both tarballs: built ESM with .d.ts and source maps, exports and types, sideEffects false, files, engines, licence, one version, no server", async () => {
    assert.equal(sdk.protocol.version, sdk.client.version, "one version for protocol and client");
    for (const pkg of [sdk.protocol, sdk.client]) {
      const m = await packedManifest(pkg);
      assert.equal(m["type"], "module");
      assert.deepEqual(m["exports"], { ".": { types: "./dist/index.d.ts", default: "./dist/index.js" }, "./package.json": "./package.json" });
      assert.equal(m["types"], "./dist/index.d.ts");
      assert.equal(m["sideEffects"], false);
      assert.ok(Array.isArray(m["files"]), "a files list");
      assert.deepEqual(m["engines"], { node: ">=20" });
      assert.equal(m["license"], "Apache-2.0");
      assert.equal(m["private"], undefined, "publishable");
      assert.equal(m["scripts"], undefined, "no workspace scripts (the prepack guard) in the package");
      const modules = pkg.files.filter((f) => f.startsWith("src/")).map((f) => f.slice(4, -3));
      assert.ok(modules.includes("index"));
      for (const mod of modules) {
        for (const ext of [".js", ".js.map", ".d.ts", ".d.ts.map"]) assert.ok(pkg.files.includes(`dist/${mod}${ext}`), `${pkg.name}: dist/${mod}${ext}`);
      }
      const expected = new Set(["package.json", "README.md", "LICENSE", "CHANGELOG.md", ...modules.map((mod) => `src/${mod}.ts`), ...modules.flatMap((mod) => [".js", ".js.map", ".d.ts", ".d.ts.map"].map((e) => `dist/${mod}${e}`))]);
      assert.deepEqual(pkg.files, [...expected].sort(), `${pkg.name}: nothing else (no tests, no workspace files)`);
      for (const mod of modules) {
        const js = await packedText(pkg, `dist/${mod}.js`);
        assert.doesNotMatch(js, /from\s+"\.{1,2}\/[^"]*\.ts"/, `${pkg.name} dist/${mod}.js imports .js files, not .ts`);
        assert.doesNotMatch(js, /from\s+"(node:|@switchboard\/server|@switchboard\/ring|ws")/, `${pkg.name} dist/${mod}.js: browser-safe, no server`);
        assert.match(js, /\/\/# sourceMappingURL=/);
      }
    }
    assert.deepEqual((await packedManifest(sdk.protocol))["dependencies"], { zod: "^4.6.7" });
    assert.deepEqual((await packedManifest(sdk.client))["dependencies"], { "@switchboard/protocol": sdk.version }, "the client needs only the protocol, at the same version");
    console.log(`# packed: protocol ${kib(sdk.protocol.packedBytes)} (${kib(sdk.protocol.unpackedBytes)} unpacked), client ${kib(sdk.client.packedBytes)} (${kib(sdk.client.unpackedBytes)} unpacked)`);
  });
});

/** Serves a project's index.html and dist/ on 127.0.0.1. */
async function serveStatic(dir: string): Promise<{ url: string; close: () => Promise<void> }> {
  const types: Record<string, string> = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".map": "application/json" };
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const file = path === "/" ? "index.html" : /^\/dist\/[\w.-]+$/.test(path) ? path.slice(1) : null;
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    readFile(join(dir, file)).then(
      (body) => res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" }).end(body),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as { port: number };
  return { url: `http://127.0.0.1:${address.port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/**
 * The test's signaling hook (docs: real parts in tests): ICE candidates other than loopback never
 * reach the other side. The namespace has only loopback anyway; this keeps it so if it had more.
 */
function loopbackCandidatesOnly(): void {
  const proto = RTCPeerConnection.prototype;
  const desc = Object.getOwnPropertyDescriptor(proto, "onicecandidate") as PropertyDescriptor;
  Object.defineProperty(proto, "onicecandidate", {
    ...desc,
    set(this: RTCPeerConnection, handler: ((e: RTCPeerConnectionIceEvent) => void) | null) {
      desc.set?.call(this, handler && ((e: RTCPeerConnectionIceEvent) => (!e.candidate || e.candidate.candidate === "" || / (127\.0\.0\.1|::1) /.test(e.candidate.candidate) ? handler.call(this, e) : undefined)));
    },
  });
}

async function waitForState(page: Page, state: string, timeoutMs = 30_000): Promise<string> {
  try {
    await page.waitForFunction((s) => document.getElementById("status")?.dataset["state"] === s, state, { timeout: timeoutMs });
  } catch (err) {
    const text = await page.evaluate(() => `${document.getElementById("status")?.textContent ?? ""}\n${document.getElementById("log")?.textContent ?? ""}`);
    throw new Error(`status never became ${state}; page says: ${text}`, { cause: err });
  }
  return page.evaluate(() => document.getElementById("status")?.textContent ?? "");
}

describe("examples/browser-call from the packed SDK", () => {
  let browser: Browser;
  before(async () => {
    browser = await launchChromium();
  });
  after(() => browser.close());

  test("installed from the tarballs, type-checked with tsc, bundled by esbuild within the size budget, and a call through a real pod in Chromium", async (t) => {
    const started = performance.now();
    const dir = await makeScratchProject(join(scratch, "browser-call"), "examples/browser-call", sdk, { files: ["package.json", "tsconfig.json", "index.html", "src"] });
    const installedMs = performance.now() - started;
    const typecheck = await run("npm", ["run", "--silent", "typecheck"], dir, { env: scratchEnv() });
    assert.equal(typecheck.code, 0, `tsc --noEmit against the packed types:\n${typecheck.output}`);
    const bundle = await run("npm", ["run", "--silent", "build"], dir, { env: scratchEnv() });
    assert.equal(bundle.code, 0, `esbuild:\n${bundle.output}`);
    console.log(`# browser-call: npm ci --offline ${installedMs.toFixed(0)} ms, tsc + esbuild ${(performance.now() - started - installedMs).toFixed(0)} ms`);

    // The SDK's cost in an app's bundle: everything the client exports, and this example's own bundle.
    const whole = await measureBundle(WHOLE_CLIENT_ENTRY, dir);
    console.log(formatSizeReport("# the whole client (+ protocol + zod) from the packed SDK", whole).replace(/\n/g, "\n# "));
    const app = await measureBundle('import "./src/main.ts";\n', dir);
    console.log(`# examples/browser-call bundle: ${kib(app.minifiedBytes)} minified, ${kib(app.gzipBytes)} minified + gzip`);
    assertWithinBudget(whole, CLIENT_BUNDLE_BUDGET_GZIP_BYTES);
    const locales = whole.inputs.filter((f) => f.includes("zod/v4/locales/"));
    assert.deepEqual(locales.map((f) => f.slice(f.lastIndexOf("/") + 1)), ["en.js"], "zod tree-shaken: only its English locale is bundled");
    assert.ok(whole.parts.some((p) => p.name.startsWith("@switchboard/client/dist/")), "measured from the installed package's dist/");

    const pod = await startPod();
    t.after(() => pod.close());
    const site = await serveStatic(dir);
    t.after(() => site.close());
    const signal = encodeURIComponent(pod.wsUrl);
    const errors: string[] = [];
    const open = async (query: string): Promise<Page> => {
      const context = await browser.newContext();
      t.after(() => context.close());
      await context.addInitScript(loopbackCandidatesOnly);
      const page = await context.newPage();
      page.on("pageerror", (e) => errors.push(e.message));
      page.on("console", (m) => void (m.type() === "error" && errors.push(m.text())));
      await page.goto(`${site.url}/?signal=${signal}&${query}`);
      return page;
    };
    const bob = await open("user=bob");
    await waitForState(bob, "signed-in");
    const callStarted = performance.now();
    const alice = await open("user=alice&call=bob");
    assert.equal(await waitForState(alice, "connected"), "in a call, the other side said: hello from bob");
    assert.equal(await waitForState(bob, "connected"), "in a call, the other side said: hello from alice");
    console.log(`# browser-call: page load + invite → data channel both ways: ${(performance.now() - callStarted).toFixed(0)} ms`);
    assert.deepEqual(errors, []);
  });
});

/** A bot process: its JSON lines as they come, and its exit. */
interface Bot {
  readonly child: ChildProcess;
  readonly lines: Array<Record<string, unknown>>;
  next(event: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  readonly exited: Promise<number | null>;
}

function startBot(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Bot {
  const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      lines.push({ event: "unparsed", line });
    }
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => {
    for (const w of waiters.splice(0)) w();
    resolve(code);
  }));
  return {
    child,
    lines,
    exited,
    next(event, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`bot ${args.join(" ")}: no "${event}" in ${timeoutMs} ms; printed ${JSON.stringify(lines)}; stderr: ${stderr}`)), timeoutMs);
        const check = (): void => {
          const found = lines.find((l) => l["event"] === event || l["event"] === "failed");
          if (found) {
            clearTimeout(timer);
            if (found["event"] === "failed" && event !== "failed") reject(new Error(`bot failed: ${JSON.stringify(found)}; stderr: ${stderr}`));
            else resolve(found);
          } else if (child.exitCode !== null) {
            clearTimeout(timer);
            reject(new Error(`bot exited ${child.exitCode} before "${event}"; printed ${JSON.stringify(lines)}; stderr: ${stderr}`));
          } else waiters.push(check);
        };
        check();
      });
    },
  };
}

function nextEvent<K extends keyof ClientEvents>(client: SwitchboardClient, type: K, match: (e: ClientEvents[K]) => boolean, timeoutMs = 10_000): Promise<ClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no matching ${String(type)} in ${timeoutMs} ms`));
    }, timeoutMs);
    const off = client.on(type, (e) => {
      if (!match(e)) return;
      clearTimeout(timer);
      off();
      resolve(e);
    });
  });
}

describe("examples/node-bot from the packed SDK", () => {
  test("built by its own tsc against the packed types; on Node 20 (ws) and Node 24 (global WebSocket) it connects, joins a room and relays through a real pod", async (t) => {
    const node20 = await run(NODE20, ["--version"], scratch).catch((err: unknown) => ({ code: 1, stdout: "", output: String(err) }));
    assert.equal(node20.code, 0, `the system Node 20 at ${NODE20} (SWITCHBOARD_NODE20 names another): ${node20.output}`);
    assert.match(node20.stdout, /^v20\./, `${NODE20} is ${node20.stdout.trim()}, not Node 20`);

    const started = performance.now();
    const dir = await makeScratchProject(join(scratch, "node-bot"), "examples/node-bot", sdk);
    const installedMs = performance.now() - started;
    const build = await run("npm", ["run", "--silent", "build"], dir, { env: scratchEnv() });
    assert.equal(build.code, 0, `tsc against the packed types:\n${build.output}`);
    console.log(`# node-bot: npm ci --offline ${installedMs.toFixed(0)} ms, tsc ${(performance.now() - started - installedMs).toFixed(0)} ms`);

    // Plain JavaScript on Node 20 imports the packed ESM, and without a WebSocket gets the coded error.
    const bare = await run(NODE20, ["--input-type=module", "-e", 'import { SwitchboardClient } from "@switchboard/client"; try { new SwitchboardClient({ url: "ws://127.0.0.1:1/v1/ws", token: "x" }); } catch (e) { console.log(e.code); }'], dir, { env: scratchEnv() });
    assert.equal(bare.stdout.trim(), "SIG_CLIENT_NO_WEBSOCKET", bare.output);

    const pod = await startPod();
    t.after(() => pod.close());
    const room = "bots";
    const env = (user: string) => scratchEnv({ SWITCHBOARD_URL: pod.wsUrl, SWITCHBOARD_TOKEN: user, SWITCHBOARD_ROOM: room });
    const bots = [
      { node: 20, ws: "ws", bot: startBot(NODE20, ["dist/bot.js"], dir, env("bot-node20")) },
      { node: 24, ws: "global", bot: startBot(process.execPath, ["--disable-warning=ExperimentalWarning", "src/bot.ts"], dir, env("bot-node24")) },
    ];
    t.after(() => {
      for (const { bot } of bots) if (bot.child.exitCode === null) bot.child.kill("SIGKILL");
    });
    const tester = new SwitchboardClient({ url: pod.wsUrl, token: "tester" });
    t.after(() => tester.close());
    await tester.connect();
    for (const { node, ws, bot } of bots) {
      const ready = await bot.next("ready");
      assert.match(String(ready["node"]), new RegExp(`^v${node}\\.`));
      assert.equal(ready["websocket"], ws, `Node ${node} uses the ${ws} WebSocket`);
      assert.equal(ready["room"], room);
    }
    const joined = await tester.join(room);
    const peers = new Map(joined.peers.map((p) => [p.userId, p.peerId]));
    for (const { node, bot } of bots) {
      const peerId = peers.get(`bot-node${node}`);
      assert.ok(peerId, `bot-node${node} is in the room: ${JSON.stringify(joined.peers)}`);
      const echo = nextEvent(tester, "message", (e) => e.from === peerId);
      await tester.message(room, peerId, { hello: `node ${node}` });
      assert.deepEqual((await echo).data, { echo: { hello: `node ${node}` } });
      const seen = await bot.next("message");
      assert.deepEqual(seen["data"], { hello: `node ${node}` });
    }
    for (const { node, bot } of bots) {
      const left = nextEvent(tester, "peer-left", (e) => e.peerId === peers.get(`bot-node${node}`));
      bot.child.kill("SIGTERM");
      assert.equal(await bot.exited, 0, `Node ${node} bot leaves cleanly on SIGTERM`);
      assert.equal((await left).reason, "closed", "its session ended with bye");
    }
  });
});
