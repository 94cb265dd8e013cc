/**
 * The servers under test, each started as its own child process with the inspector on a loopback
 * port (for forced GCs, heap usage and profiles between measurements):
 *
 * - `switchboard`: the pod, `node signaling/server/src/main.ts`, configured through the
 *   environment and a JSON config file (the per-address caps lifted: every load worker connects
 *   from one loopback address).
 * - `peerjs`: the reference PeerJS server (npm `peer`) with its concurrent limit lifted.
 * - `plain-ws`: a bare `ws` server with the pod's transport settings; the floor under the pod.
 *
 * @module
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ClientProtocol } from "./load/ipc.ts";
import { InspectorSession } from "./inspector.ts";

/** Names of the servers the bench knows. */
export type TargetName = "switchboard" | "peerjs" | "plain-ws";

/** Protocol the load workers speak to each target. */
export const TARGET_PROTOCOL: Readonly<Record<TargetName, ClientProtocol>> = {
  switchboard: "switchboard",
  peerjs: "peerjs",
  "plain-ws": "plain",
};

/** A running server. */
export interface Target {
  readonly name: TargetName;
  readonly pid: number;
  /** Base WebSocket URL the workers connect to. */
  readonly wsUrl: string;
  /** `http://127.0.0.1:<port>`. */
  readonly httpUrl: string;
  /** Opens an inspector session (close it after use). */
  inspect(): Promise<InspectorSession>;
  /** The last lines the process wrote (for error reports). */
  output(): string;
  stop(): Promise<void>;
}

/** Options of {@link startTarget}. */
export interface TargetOptions {
  /** Extra Node flags for the server process (e.g. `--max-semi-space-size=1`). */
  readonly nodeFlags: readonly string[];
  /** Extra environment for the server process (e.g. `MALLOC_ARENA_MAX=2`). */
  readonly env: Readonly<Record<string, string>>;
  /** When set, everything the server writes is also appended to this file. */
  readonly logFile?: string;
}

const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const POD_MAIN = join(REPO_ROOT, "signaling/server/src/main.ts");
const PEERJS_MAIN = fileURLToPath(new URL("./servers/peerjs-server.ts", import.meta.url));
const PLAIN_WS_MAIN = fileURLToPath(new URL("./servers/plain-ws-server.ts", import.meta.url));

/** Starts `name` and resolves once it accepts connections. */
export async function startTarget(name: TargetName, options: TargetOptions): Promise<Target> {
  const port = await freePort();
  const env = cleanEnv(options.env);
  let args: string[];
  if (name === "switchboard") {
    const dir = mkdtempSync(join(tmpdir(), "switchboard-bench-"));
    const configFile = join(dir, "config.json");
    // One loopback source address per worker holds thousands of sockets, so the per-address caps
    // (meant for the internet) are lifted; everything else is the pod's default.
    writeFileSync(configFile, JSON.stringify({ limits: { upgradesPerSecondPerIp: 1_000_000, maxConnectionsPerIp: 1_000_000, maxConnections: 1_000_000 } }));
    Object.assign(env, {
      SWITCHBOARD_AUTH_INSECURE_DEV: "1",
      SWITCHBOARD_HOST: "127.0.0.1",
      SWITCHBOARD_PORT: String(port),
      SWITCHBOARD_MAX_CONNECTIONS_PER_IP: "1000000",
      SWITCHBOARD_LOG_LEVEL: "warn",
      SWITCHBOARD_CONFIG_FILE: configFile,
    });
    args = [POD_MAIN];
  } else {
    args = [name === "peerjs" ? PEERJS_MAIN : PLAIN_WS_MAIN, String(port)];
  }
  const child = spawn(process.execPath, [...options.nodeFlags, "--inspect=127.0.0.1:0", ...args], { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  let inspectorUrl = "";
  const logFile = options.logFile ? createWriteStream(options.logFile, { flags: "a" }) : null;
  const collect = (chunk: Buffer): void => {
    logFile?.write(chunk);
    for (const line of chunk.toString("utf8").split("\n")) {
      if (!line) continue;
      const m = /Debugger listening on (ws:\/\/\S+)/.exec(line);
      if (m) inspectorUrl = m[1] as string;
      lines.push(line);
      if (lines.length > 40) lines.shift();
    }
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const output = (): string => lines.join("\n");

  const httpUrl = `http://127.0.0.1:${port}`;
  const ready = async (): Promise<boolean> => {
    if (name === "switchboard") {
      try {
        return (await fetch(`${httpUrl}/readyz`)).status === 200;
      } catch {
        return false;
      }
    }
    return lines.some((l) => l.startsWith("READY "));
  };
  const deadline = Date.now() + 30_000;
  while (!(inspectorUrl && (await ready()))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${name} did not start:\n${output()}`);
    }
    await sleep(100);
  }
  const wsUrl = name === "switchboard" ? `ws://127.0.0.1:${port}/v1/ws` : `ws://127.0.0.1:${port}`;
  return {
    name,
    pid: child.pid as number,
    wsUrl,
    httpUrl,
    inspect: () => InspectorSession.open(inspectorUrl),
    output,
    stop: () => stopChild(child, exited),
  };
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null) return;
  // The measurements are done: no drain, no graceful close of thousands of sockets.
  child.kill("SIGKILL");
  await exited;
}

/** The parent's environment without anything that would change the servers' behaviour. */
function cleanEnv(extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith("SWITCHBOARD_") || k.startsWith("OTEL_") || k === "NODE_OPTIONS") continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
