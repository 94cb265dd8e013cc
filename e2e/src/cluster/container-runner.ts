import { join } from 'node:path';
import { ContainerProcess, type ProcessExit } from './container-process.ts';
import { containerArgv, type ImageCommand } from './images.ts';
import { ProbeLoop, runAction, type ActionTarget } from './probe.ts';
import { expandVars } from './pod-env.ts';
import { isSet } from './pod-status.ts';
import type { Container, ContainerState, ContainerStatus } from './wire-types.ts';

/** What a container runner needs from its pod. */
export interface ContainerContext {
  readonly podIP: string;
  /** Directory for logs and pidfiles. */
  readonly podDir: string;
  /** Looks the image up; `undefined` when the node agent cannot run it. */
  readonly image: (image: string) => ImageCommand | undefined;
  /** Computes the environment; rejects when a referenced ConfigMap, Secret or key is missing. */
  readonly env: (container: Container) => Promise<Record<string, string>>;
  /** Whether an exit with this code restarts the container. */
  readonly restartOnExit: (exitCode: number) => boolean;
  /** Grace period for a restart after a failed liveness or startup probe. */
  readonly graceMs: () => number;
  /** Delay before restart number `restarts` (the kubelet's crash-loop back-off). */
  readonly backoffMs: (restarts: number) => number;
  /** Called after every change of the container's status. */
  readonly changed: () => void;
  /** Records a Kubernetes event about this container. */
  readonly event: (type: 'Normal' | 'Warning', reason: string, message: string) => void;
}

/** @default back-off while a container cannot be created (missing image, env source) */
export const DEFAULT_CREATE_RETRY_MS = 5_000;

/**
 * Runs one container of a pod as a local process for as long as the pod lives: creates it,
 * restarts it by the pod's restart policy with back-off, probes it (startup, liveness, readiness)
 * and stops it with its preStop hook, SIGTERM and SIGKILL. Owns its process, timers and probes.
 */
export class ContainerRunner {
  readonly spec: Container;
  readonly #ctx: ContainerContext;
  readonly #stopping = new AbortController();
  #proc: ContainerProcess | undefined;
  #target: ActionTarget | undefined;
  #probes: ProbeLoop[] = [];
  #state: ContainerState = { waiting: { reason: 'ContainerCreating' } };
  #lastState: ContainerState = {};
  #restartCount: number;
  #ready = false;
  #started = false;
  #everStarted = false;
  #done: Promise<void> | undefined;

  constructor(spec: Container, ctx: ContainerContext, restartCount = 0) {
    this.spec = spec;
    this.#ctx = ctx;
    this.#restartCount = restartCount;
  }

  /** The process while one runs. */
  get process(): ContainerProcess | undefined {
    return this.#proc;
  }

  /** Whether a process was started at least once and its startup probe (if any) passed. */
  get started(): boolean {
    return this.#started;
  }

  /** Whether the container ran and exited, and will not be restarted. */
  get finished(): boolean {
    return isSet(this.#state.terminated);
  }

  /** The exit code when finished. */
  get exitCode(): number | undefined {
    return this.#state.terminated?.exitCode;
  }

  /** The container's entry in `status.containerStatuses`. */
  status(): ContainerStatus {
    return {
      name: this.spec.name,
      image: this.spec.image,
      imageID: `switchboard-node-agent://${this.spec.image}`,
      ...(this.#proc !== undefined || isSet(this.#state.terminated) ? { containerID: this.#containerID() } : {}),
      ready: this.#ready,
      started: this.#started,
      restartCount: this.#restartCount,
      state: this.#state,
      lastState: this.#lastState,
    };
  }

  /** Starts the run loop; `done` resolves when it ends (finished or stopped). */
  start(): void {
    this.#done ??= this.#run();
  }

  /** Resolves when the run loop has ended. */
  get done(): Promise<void> {
    return this.#done ?? Promise.resolve();
  }

  /**
   * Stops the container for good: runs its preStop hook, then SIGTERM, then SIGKILL at
   * `deadline` (epoch ms; at least 2 s after the hook, as the kubelet allows). Resolves when the
   * process and the run loop have ended.
   */
  async stop(deadline: number): Promise<void> {
    const first = !this.#stopping.signal.aborted;
    this.#stopping.abort();
    const proc = this.#proc;
    if (proc !== undefined && proc.exit === undefined && first) {
      this.#stopProbes();
      this.#setReady(false);
      const preStop = this.spec.lifecycle?.preStop;
      if (preStop !== undefined && this.#target !== undefined) {
        const result = await runAction(preStop, this.#target, Math.max(0, deadline - Date.now()));
        if (!result.ok) this.#ctx.event('Warning', 'FailedPreStopHook', `PreStopHook failed: ${result.message}`);
      }
      this.#ctx.event('Normal', 'Killing', `Stopping container ${this.spec.name}`);
      await proc.stop(Math.max(2_000, deadline - Date.now()));
    }
    await this.done;
  }

  async #run(): Promise<void> {
    const signal = this.#stopping.signal;
    while (!signal.aborted) {
      const created = await this.#create();
      if (created === undefined) {
        await sleep(DEFAULT_CREATE_RETRY_MS, signal);
        continue;
      }
      const exit = await this.#runOnce(created.argv, created.env, created.image);
      if (exit === undefined) continue; // could not start; #runOnce set the state
      if (signal.aborted || !this.#ctx.restartOnExit(exit.exitCode)) return;
      const delay = this.#ctx.backoffMs(this.#restartCount);
      this.#lastState = this.#state;
      this.#state = { waiting: { reason: 'CrashLoopBackOff', message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${this.spec.name}` } };
      this.#ctx.event('Warning', 'BackOff', `Back-off restarting failed container ${this.spec.name}`);
      this.#ctx.changed();
      await sleep(delay, signal);
      if (signal.aborted) return;
      this.#restartCount++;
    }
  }

  /** Resolves the image and the environment, or sets the waiting reason and resolves undefined. */
  async #create(): Promise<{ argv: string[]; env: Record<string, string>; image: ImageCommand } | undefined> {
    const image = this.#ctx.image(this.spec.image);
    if (image === undefined) {
      this.#setWaiting('ErrImagePull', `the node agent has no command for image "${this.spec.image}" (see e2e/src/cluster/images.ts)`);
      this.#ctx.event('Warning', 'Failed', `Failed to pull image "${this.spec.image}": not in the node agent's image map`);
      return undefined;
    }
    try {
      const env = await this.#ctx.env(this.spec);
      if (image.bindAddressEnv !== undefined) env[image.bindAddressEnv] = this.#ctx.podIP;
      if (!this.#everStarted) this.#ctx.event('Normal', 'Pulled', `Container image "${this.spec.image}" already present on machine`);
      // `$(VAR)` in command and args expands against the container's env, as the kubelet does it.
      const vars = new Map(Object.entries(env));
      const expand = (list: readonly string[] | undefined) => list?.map((s) => expandVars(s, vars));
      return { argv: containerArgv(image, expand(this.spec.command), expand(this.spec.args)), env, image };
    } catch (err) {
      this.#setWaiting('CreateContainerConfigError', (err as Error).message);
      this.#ctx.event('Warning', 'Failed', `Error: ${(err as Error).message}`);
      return undefined;
    }
  }

  async #runOnce(argv: string[], env: Record<string, string>, image: ImageCommand): Promise<ProcessExit | undefined> {
    const signal = this.#stopping.signal;
    let proc: ContainerProcess;
    try {
      proc = await ContainerProcess.start({
        argv,
        env,
        cwd: image.cwd,
        logFile: join(this.#ctx.podDir, `${this.spec.name}.log`),
        pidFile: join(this.#ctx.podDir, `${this.spec.name}.pid`),
      });
    } catch (err) {
      const finishedAt = new Date().toISOString();
      this.#state = { terminated: { exitCode: 128, reason: 'StartError', message: (err as Error).message, finishedAt } };
      this.#ctx.event('Warning', 'Failed', `Error: failed to start container "${this.spec.name}": ${(err as Error).message}`);
      this.#ctx.changed();
      await sleep(this.#ctx.backoffMs(this.#restartCount), signal);
      this.#restartCount++;
      return undefined;
    }
    this.#proc = proc;
    this.#everStarted = true;
    this.#target = { podIP: this.#ctx.podIP, ports: this.spec.ports ?? [], env, cwd: image.cwd };
    this.#state = { running: { startedAt: proc.startedAt.toISOString() } };
    this.#ctx.event('Normal', 'Created', `Created container ${this.spec.name}`);
    this.#ctx.event('Normal', 'Started', `Started container ${this.spec.name}`);
    this.#startProbes(proc);
    this.#ctx.changed();
    if (signal.aborted) void proc.stop(this.#ctx.graceMs());
    const postStart = this.spec.lifecycle?.postStart;
    if (postStart !== undefined) {
      const result = await runAction(postStart, this.#target, this.#ctx.graceMs(), signal);
      if (!result.ok && !signal.aborted) {
        this.#ctx.event('Warning', 'FailedPostStartHook', `PostStartHook failed: ${result.message}`);
        void proc.stop(this.#ctx.graceMs());
      }
    }
    const exit = await proc.exited;
    this.#stopProbes();
    this.#ready = false;
    this.#started = false;
    this.#state = {
      terminated: {
        exitCode: exit.exitCode,
        ...(exit.signal === null ? {} : { signal: exit.exitCode - 128 }),
        reason: exit.exitCode === 0 ? 'Completed' : 'Error',
        startedAt: proc.startedAt.toISOString(),
        finishedAt: exit.finishedAt.toISOString(),
        containerID: this.#containerID(),
      },
    };
    this.#ctx.changed();
    return exit;
  }

  #startProbes(proc: ContainerProcess): void {
    const target = this.#target;
    if (target === undefined) return;
    const { readinessProbe, livenessProbe, startupProbe } = this.spec;
    const restart = (kind: string, message: string) => {
      this.#ctx.event('Warning', 'Unhealthy', `${kind} probe failed: ${message}`);
      this.#ctx.event('Normal', 'Killing', `Container ${this.spec.name} failed ${kind.toLowerCase()} probe, will be restarted`);
      void proc.stop(this.#ctx.graceMs());
    };
    const afterStartup = () => {
      this.#started = true;
      if (readinessProbe === undefined) this.#setReady(true);
      else this.#addProbe(readinessProbe, target, (ok, message) => {
        if (!ok) this.#ctx.event('Warning', 'Unhealthy', `Readiness probe failed: ${message}`);
        this.#setReady(ok);
      });
      if (livenessProbe !== undefined) this.#addProbe(livenessProbe, target, (ok, message) => { if (!ok) restart('Liveness', message); });
      this.#ctx.changed();
    };
    if (startupProbe === undefined) {
      afterStartup();
      return;
    }
    let passed = false;
    this.#addProbe(startupProbe, target, (ok, message) => {
      if (passed) return;
      if (ok) {
        passed = true;
        afterStartup();
      } else restart('Startup', message);
    });
  }

  #addProbe(probe: NonNullable<Container['readinessProbe']>, target: ActionTarget, onVerdict: (ok: boolean, message: string) => void): void {
    const loop = new ProbeLoop(probe, target, onVerdict);
    this.#probes.push(loop);
    loop.start();
  }

  #stopProbes(): void {
    for (const p of this.#probes) p.stop();
    this.#probes = [];
  }

  #setReady(ready: boolean): void {
    if (this.#ready === ready) return;
    this.#ready = ready;
    this.#ctx.changed();
  }

  #setWaiting(reason: string, message: string): void {
    const same = this.#state.waiting?.reason === reason && this.#state.waiting.message === message;
    this.#state = { waiting: { reason, message } };
    if (!same) this.#ctx.changed();
  }

  #containerID(): string {
    return `process://${this.#proc?.pid ?? 0}`;
  }
}

/** Sleeps `ms`, or less when `signal` aborts. Never rejects. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
