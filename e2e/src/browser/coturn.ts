import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";

/** A coturn server on loopback with the TURN REST shared secret scheme (`use-auth-secret`). */
export interface Coturn {
  readonly url: string;
  readonly secret: string;
  close(): Promise<void>;
}

/** Starts Debian's `turnserver` on 127.0.0.1 (loopback peers allowed); resolves once it listens. */
export async function startCoturn(secret: string): Promise<Coturn> {
  const port = await freeUdpTcpPort();
  const child: ChildProcess = spawn(
    "turnserver",
    [
      "-n",
      "--listening-ip=127.0.0.1",
      "--relay-ip=127.0.0.1",
      `--listening-port=${port}`,
      "--use-auth-secret",
      `--static-auth-secret=${secret}`,
      "--realm=switchboard.test",
      "--allow-loopback-peers",
      "--no-tls",
      "--no-dtls",
      "--no-cli",
      `--min-port=${port + 1}`,
      `--max-port=${port + 200}`,
      "--fingerprint",
      "--log-file=stdout",
      "--simple-log",
      "--userdb=/tmp/switchboard-e2e-turndb",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const output: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`coturn did not start: ${output.join("").slice(-2000)}`)), 10_000);
    const onData = (chunk: Buffer) => {
      output.push(chunk.toString());
      if (output.join("").includes("Total General servers")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`coturn exited with ${code}: ${output.join("").slice(-2000)}`));
    });
  });
  child.stdout?.resume();
  child.stderr?.resume();
  return {
    url: `turn:127.0.0.1:${port}?transport=udp`,
    secret,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 3000).unref();
      }),
  };
}

/** A TCP port that is free now, in a range that leaves room for coturn's relay ports above it. */
async function freeUdpTcpPort(): Promise<number> {
  for (;;) {
    const candidate = 20_000 + Math.floor(Math.random() * 20_000);
    const ok = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once("error", () => resolve(false));
      srv.listen(candidate, "127.0.0.1", () => srv.close(() => resolve(true)));
    });
    if (ok) return candidate;
  }
}
