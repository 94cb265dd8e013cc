import { spawn, type ChildProcess } from "node:child_process";
import { access, mkdtemp, rm } from "node:fs/promises";
import { createConnection, createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

/** The NATS server the fault tests run; `scripts/build-nats-server.sh` (`make nats-build`) builds it. */
export const NATS_SERVER_VERSION = "v2.15.2";

/** Where `scripts/build-nats-server.sh` puts the binary. */
export function natsServerPath(): string {
  const cache = process.env.SWITCHBOARD_CACHE ?? join(homedir(), ".cache", "switchboard");
  return join(cache, `nats-server-${NATS_SERVER_VERSION}`, "nats-server");
}

/** How long a service may take to accept connections after `start`. */
const START_TIMEOUT_MS = 15_000;
/** How long `stop` waits after SIGTERM before it sends SIGKILL. */
const STOP_GRACE_MS = 5_000;

/**
 * A dependency run as a child process of the test on a fixed loopback port, which a test can take
 * away (`stop`) and bring back (`start`, same port and store) while pods depend on it.
 */
export interface ServiceProcess {
  readonly name: string;
  readonly port: number;
  /** The URL clients connect to (`redis://…`, `nats://…`). */
  readonly url: string;
  readonly running: boolean;
  /** Starts the process (again); resolves once it serves (JetStream included), rejects after 15 s. */
  start(): Promise<void>;
  /** Stops the process (SIGTERM, SIGKILL after 5 s); resolves once it is gone. Idempotent. */
  stop(): Promise<void>;
  /** Everything the process printed, over all its runs. */
  output(): string;
}

/** An own Redis and an own JetStream-enabled NATS server for one test; `close` removes everything. */
export interface TestServices extends AsyncDisposable {
  readonly redis: ServiceProcess;
  readonly nats: ServiceProcess;
  /** Stops both and deletes their directories. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts a `redis-server` (no persistence: a restart loses every key, as a replaced Redis pod would)
 * and a nats-server {@link NATS_SERVER_VERSION} with JetStream on its own store directory (a
 * restart keeps streams and consumers), each on free loopback ports. Rejects, having stopped what it
 * started, when either does not come up; a missing nats-server binary names the make target.
 */
export async function startTestServices(): Promise<TestServices> {
  const nats = natsServerPath();
  try {
    await access(nats);
  } catch {
    throw new Error(`${nats} is missing: run \`make nats-build\` (scripts/build-nats-server.sh) once on this machine`);
  }
  const dir = await mkdtemp(join(tmpdir(), "sb-services-"));
  const [redisPort, natsPort, natsMonitorPort] = (await freePorts(3)) as [number, number, number];
  const redis = new ChildService("redis", redisPort, `redis://127.0.0.1:${redisPort}`, {
    command: "redis-server",
    args: ["--bind", "127.0.0.1", "--port", String(redisPort), "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no"],
    ready: () => redisPing(redisPort),
  });
  const natsService = new ChildService("nats", natsPort, `nats://127.0.0.1:${natsPort}`, {
    command: nats,
    args: ["-a", "127.0.0.1", "-p", String(natsPort), "-m", String(natsMonitorPort), "-n", "sb-fault-test", "-js", "-sd", join(dir, "jetstream")],
    // /healthz answers 200 only once JetStream has recovered its streams and consumers.
    ready: () => httpOk(`http://127.0.0.1:${natsMonitorPort}/healthz`),
  });
  let closed: Promise<void> | null = null;
  const services: TestServices = {
    redis,
    nats: natsService,
    close() {
      closed ??= (async () => {
        await Promise.all([redis.stop(), natsService.stop()]);
        await rm(dir, { recursive: true, force: true });
      })();
      return closed;
    },
    [Symbol.asyncDispose]() {
      return services.close();
    },
  };
  try {
    await Promise.all([redis.start(), natsService.start()]);
  } catch (err) {
    await services.close();
    throw err;
  }
  return services;
}

interface Spec {
  readonly command: string;
  readonly args: readonly string[];
  /** Resolves true once the service serves; false (or a rejection) while it does not yet. */
  readonly ready: () => Promise<boolean>;
}

/** Children still running, killed if the test process exits without closing them. */
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

class ChildService implements ServiceProcess {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly #spec: Spec;
  #child: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();
  #out = "";

  constructor(name: string, port: number, url: string, spec: Spec) {
    this.name = name;
    this.port = port;
    this.url = url;
    this.#spec = spec;
  }

  get running(): boolean {
    return this.#child !== null;
  }

  output(): string {
    return this.#out;
  }

  async start(): Promise<void> {
    if (this.#child) return;
    const child = spawn(this.#spec.command, this.#spec.args, { stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    live.add(child);
    const append = (c: Buffer) => (this.#out += c.toString());
    child.stdout?.on("data", append);
    child.stderr?.on("data", append);
    let exitCode: number | string | null = null;
    this.#exited = new Promise<void>((resolve) => {
      child.once("exit", (code, signal) => {
        exitCode = code ?? signal;
        live.delete(child);
        if (this.#child === child) this.#child = null;
        resolve();
      });
      child.once("error", (err) => {
        this.#out += `spawn failed: ${err.message}\n`;
        exitCode = "spawn-error";
        live.delete(child);
        if (this.#child === child) this.#child = null;
        resolve();
      });
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (exitCode !== null) throw new Error(`${this.name} exited (${exitCode}) while starting:\n${this.#out.slice(-2000)}`);
      if (await this.#spec.ready().catch(() => false)) return;
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`${this.name} did not serve on port ${this.port} within ${START_TIMEOUT_MS} ms:\n${this.#out.slice(-2000)}`);
      }
      await sleep(50);
    }
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return this.#exited;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
    await this.#exited;
    clearTimeout(timer);
  }
}

/** `n` distinct loopback ports that were free a moment ago. */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once("error", reject);
          s.listen(0, "127.0.0.1", () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** True when Redis on `port` answers PING (within 1 s). */
function redisPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let reply = "";
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 1000);
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.on("data", (c: Buffer) => {
      reply += c.toString();
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
    socket.once("error", () => done(false));
  });
}

async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
  await res.body?.cancel();
  return res.ok;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
