import { spawn } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { ContainerPort, Handler, PortRef, Probe } from './wire-types.ts';

/** The result of one probe or hook action. */
export interface ActionResult {
  readonly ok: boolean;
  readonly message: string;
}

/** Where a container's probes and hooks run. */
export interface ActionTarget {
  readonly podIP: string;
  readonly ports: readonly ContainerPort[];
  /** Environment and working directory for `exec` actions. */
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
}

/** Resolves a port number or container port name. */
export function resolvePort(port: PortRef, ports: readonly ContainerPort[]): number | undefined {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  return ports.find((p) => p.name === port)?.containerPort;
}

/**
 * Runs one probe or lifecycle-hook action as the kubelet does: `httpGet` succeeds on a status in
 * [200, 400), `tcpSocket` when a connection opens, `exec` on exit code 0, `sleep` after its time.
 * `grpc` is not supported and fails. Never rejects.
 */
export async function runAction(action: Handler, target: ActionTarget, timeoutMs: number, signal?: AbortSignal): Promise<ActionResult> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const abort = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
  try {
    if (action.httpGet !== undefined) return await httpGet(action.httpGet, target, abort);
    if (action.tcpSocket !== undefined) return await tcpSocket(action.tcpSocket, target, abort);
    if (action.exec !== undefined) return await execAction(action.exec.command ?? [], target, abort);
    if (action.sleep !== undefined) return await sleepAction(action.sleep.seconds * 1000, signal);
    if (action.grpc !== undefined) return { ok: false, message: 'grpc probes are not supported by the node agent' };
    return { ok: false, message: 'probe has no action' };
  } catch (err) {
    return { ok: false, message: timeout.aborted ? `timed out after ${timeoutMs}ms` : (err as Error).message };
  }
}

function httpGet(get: NonNullable<Handler['httpGet']>, target: ActionTarget, signal: AbortSignal): Promise<ActionResult> {
  const port = resolvePort(get.port, target.ports);
  if (port === undefined) return Promise.resolve({ ok: false, message: `no container port named "${get.port}"` });
  const headers: Record<string, string> = { 'user-agent': 'kube-probe/switchboard-node-agent', accept: '*/*' };
  for (const h of get.httpHeaders ?? []) headers[h.name] = h.value;
  const isHttps = get.scheme === 'HTTPS';
  const options = {
    host: get.host !== undefined && get.host !== '' ? get.host : target.podIP,
    port,
    path: get.path ?? '/',
    method: 'GET',
    headers,
    signal,
    agent: false as const,
    // The kubelet does not verify the certificate of an HTTPS probe either.
    ...(isHttps ? { rejectUnauthorized: false } : {}),
  };
  return new Promise((resolve, reject) => {
    const req = (isHttps ? https : http).request(options, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      resolve({ ok: status >= 200 && status < 400, message: `HTTP probe failed with statuscode: ${status}` });
    });
    req.on('error', reject);
    req.end();
  });
}

function tcpSocket(tcp: NonNullable<Handler['tcpSocket']>, target: ActionTarget, signal: AbortSignal): Promise<ActionResult> {
  const port = resolvePort(tcp.port, target.ports);
  if (port === undefined) return Promise.resolve({ ok: false, message: `no container port named "${tcp.port}"` });
  const host = tcp.host !== undefined && tcp.host !== '' ? tcp.host : target.podIP;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, signal }, () => {
      socket.destroy();
      resolve({ ok: true, message: '' });
    });
    socket.on('error', reject);
  });
}

function execAction(command: readonly string[], target: ActionTarget, signal: AbortSignal): Promise<ActionResult> {
  const [program, ...args] = command;
  if (program === undefined) return Promise.resolve({ ok: false, message: 'exec with an empty command' });
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { cwd: target.cwd, env: { ...target.env }, stdio: ['ignore', 'pipe', 'pipe'], signal, killSignal: 'SIGKILL' });
    let output = '';
    child.stdout.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-1024); });
    child.stderr.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-1024); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ ok: code === 0, message: `command exited with ${code}: ${output.trim()}` }));
  });
}

function sleepAction(ms: number, signal: AbortSignal | undefined): Promise<ActionResult> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ ok: true, message: '' }), ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve({ ok: false, message: 'sleep interrupted' });
    }, { once: true });
  });
}

/** Probe settings with the API's defaults filled in. */
export interface ProbeTiming {
  readonly initialDelayMs: number;
  readonly periodMs: number;
  readonly timeoutMs: number;
  readonly successThreshold: number;
  readonly failureThreshold: number;
}

/** Fills in a probe's defaults (period 10s, timeout 1s, thresholds 1 and 3). */
export function probeTiming(probe: Probe): ProbeTiming {
  return {
    initialDelayMs: (probe.initialDelaySeconds ?? 0) * 1000,
    periodMs: (probe.periodSeconds ?? 10) * 1000,
    timeoutMs: (probe.timeoutSeconds ?? 1) * 1000,
    successThreshold: probe.successThreshold ?? 1,
    failureThreshold: probe.failureThreshold ?? 3,
  };
}

/**
 * Runs a probe periodically and reports each change of its verdict after the thresholds: `true`
 * after `successThreshold` successes in a row, `false` after `failureThreshold` failures in a row.
 * Owns its timer; `stop()` ends it.
 */
export class ProbeLoop {
  readonly #probe: Probe;
  readonly #timing: ProbeTiming;
  readonly #target: ActionTarget;
  readonly #onVerdict: (ok: boolean, message: string) => void;
  readonly #abort = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #verdict: boolean | undefined;
  #successes = 0;
  #failures = 0;

  constructor(probe: Probe, target: ActionTarget, onVerdict: (ok: boolean, message: string) => void) {
    this.#probe = probe;
    this.#timing = probeTiming(probe);
    this.#target = target;
    this.#onVerdict = onVerdict;
  }

  /** Starts probing after the initial delay. */
  start(): void {
    this.#schedule(this.#timing.initialDelayMs);
  }

  /** Stops probing; an action under way is aborted. Idempotent. */
  stop(): void {
    this.#abort.abort();
    clearTimeout(this.#timer);
  }

  #schedule(delayMs: number): void {
    if (this.#abort.signal.aborted) return;
    this.#timer = setTimeout(() => void this.#tick(), delayMs);
  }

  async #tick(): Promise<void> {
    const result = await runAction(this.#probe, this.#target, this.#timing.timeoutMs, this.#abort.signal);
    if (this.#abort.signal.aborted) return;
    if (result.ok) {
      this.#successes++;
      this.#failures = 0;
      if (this.#verdict !== true && this.#successes >= this.#timing.successThreshold) this.#set(true, '');
    } else {
      this.#failures++;
      this.#successes = 0;
      if (this.#verdict !== false && this.#failures >= this.#timing.failureThreshold) this.#set(false, result.message);
    }
    this.#schedule(this.#timing.periodMs);
  }

  #set(ok: boolean, message: string): void {
    this.#verdict = ok;
    this.#onVerdict(ok, message);
  }
}
