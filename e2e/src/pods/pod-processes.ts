import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../../../signaling/server/src/main.ts", import.meta.url));

/** A pod running as its own process. */
export interface PodProcess {
  readonly name: string;
  readonly port: number;
  readonly wsUrl: string;
  readonly httpUrl: string;
  readonly child: ChildProcess;
  /** Everything the pod logged. */
  output(): string;
  /** Sends `signal` and resolves with the exit code once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Several pods of one cluster as child processes, with a ring file they all follow. */
export interface PodCluster {
  readonly name: string;
  readonly pods: PodProcess[];
  readonly ringFile: string;
  /** Starts one more pod of the cluster (not yet in the ring: write the ring to add it). */
  addPod(name: string): Promise<PodProcess>;
  /** Writes the ring document the pods follow (as the operator writes the ConfigMap). */
  writeRing(version: number, members: ReadonlyArray<{ name: string; state: "JOINING" | "ACTIVE" | "LEAVING" }>): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts `count` pods (pod-0 …) of a fresh cluster (its own stream and key prefix) on loopback,
 * with insecure dev auth, all ACTIVE in the ring. Every process is killed by `close`.
 */
export async function startPodCluster(count: number, env: Record<string, string> = {}): Promise<PodCluster> {
  const name = `e2e${randomBytes(5).toString("hex")}`;
  const dir = await mkdtemp(join(tmpdir(), "pods-"));
  const ringFile = join(dir, "ring.json");
  const names = Array.from({ length: count }, (_, i) => `pod-${i}`);
  await writeFile(
    ringFile,
    JSON.stringify({ version: 1, members: names.map((n, i) => ({ name: n, address: `127.0.0.1:${9000 + i}`, state: "ACTIVE" })) }),
  );
  const pods: PodProcess[] = [];
  const podEnv = { SWITCHBOARD_CLUSTER_NAME: name, SWITCHBOARD_RING_FILE: ringFile, ...env };
  const cluster: PodCluster = {
    name,
    pods,
    ringFile,
    addPod: async (podName) => {
      const pod = await startPod(podName, podEnv);
      pods.push(pod);
      return pod;
    },
    writeRing: async (version, members) => {
      // Written to a temporary file and renamed, as a ConfigMap update lands.
      const tmp = `${ringFile}.tmp`;
      await writeFile(tmp, JSON.stringify({ version, members: members.map((m) => ({ name: m.name, address: "127.0.0.1:8080", state: m.state })) }));
      await rename(tmp, ringFile);
    },
    close: async () => {
      await Promise.all(pods.map((p) => p.stop("SIGKILL")));
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    for (const podName of names) pods.push(await startPod(podName, podEnv));
  } catch (err) {
    await cluster.close();
    throw err;
  }
  return cluster;
}

async function startPod(name: string, env: Record<string, string>): Promise<PodProcess> {
  const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", MAIN], {
    env: {
      ...process.env,
      SWITCHBOARD_POD_NAME: name,
      SWITCHBOARD_PORT: "0",
      SWITCHBOARD_AUTH_INSECURE_DEV: "1",
      SWITCHBOARD_LOG_LEVEL: "info",
      SWITCHBOARD_DRAIN_TIMEOUT_MS: "2000",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr?.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${out}`)), 20_000);
    const check = () => {
      const m = /"msg":"listening"/.test(out) ? /"port":(\d+)/.exec(out) : null;
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout?.on("data", check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}:\n${out}`));
    });
  });
  return {
    name,
    port,
    wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
    httpUrl: `http://127.0.0.1:${port}`,
    child,
    output: () => out,
    stop: (signal = "SIGTERM") => {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill(signal);
      return exited;
    },
  };
}
