import { ContainerRunner, sleep, type ContainerContext } from './container-runner.ts';
import type { ImageCommand } from './images.ts';
import { isSet, patchableState, podConditions, podPhase, stampConditions } from './pod-status.ts';
import type { Container, ContainerStatus, Pod, PodStatus } from './wire-types.ts';

/** What a pod runner needs from the node agent. */
export interface PodContext {
  readonly podIP: string;
  readonly hostIP: string;
  /** Directory for this pod's logs, pidfiles and service-account files. */
  readonly podDir: string;
  readonly image: (image: string) => ImageCommand | undefined;
  /** The container's environment (spec env, downward API, service-account access). */
  readonly env: (pod: Pod, container: Container) => Promise<Record<string, string>>;
  /** Crash-loop back-off before restart number `restarts`. */
  readonly backoffMs: (restarts: number) => number;
  /** Called after every change of the pod's status. */
  readonly changed: () => void;
  readonly event: (pod: Pod, type: 'Normal' | 'Warning', reason: string, message: string, fieldPath?: string) => void;
}

/** @default grace period when the pod spec gives none */
export const DEFAULT_TERMINATION_GRACE_SECONDS = 30;

/**
 * Runs one pod: its init containers in order (sidecars, with `restartPolicy: Always`, stay
 * running), then its containers, and reports the pod's status. Owns its container runners;
 * `terminate()` stops them all.
 */
export class PodRunner {
  #pod: Pod;
  readonly #ctx: PodContext;
  readonly #init: ContainerRunner[] = [];
  readonly #app: ContainerRunner[] = [];
  readonly #startTime = new Date().toISOString();
  readonly #stopping = new AbortController();
  #initDone: boolean;
  #terminated: Promise<void> | undefined;

  constructor(pod: Pod, ctx: PodContext) {
    this.#pod = pod;
    this.#ctx = ctx;
    const previous = new Map((pod.status?.containerStatuses ?? []).map((s) => [s.name, s.restartCount]));
    for (const c of pod.spec.initContainers ?? []) this.#init.push(new ContainerRunner(c, this.#containerContext(c, true)));
    for (const c of pod.spec.containers) this.#app.push(new ContainerRunner(c, this.#containerContext(c, false), previous.get(c.name) ?? 0));
    this.#initDone = this.#init.length === 0;
  }

  /** The latest pod object seen. */
  get pod(): Pod {
    return this.#pod;
  }

  /** Whether `terminate()` was called. */
  get terminating(): boolean {
    return this.#stopping.signal.aborted;
  }

  /** Starts the pod's containers (in the background). */
  start(): void {
    void this.#run();
  }

  /** Takes a newer version of the pod (readiness gates, deletion). */
  update(pod: Pod): void {
    this.#pod = pod;
  }

  /**
   * Stops every container: preStop hooks, SIGTERM, SIGKILL after `graceSeconds` (the pod's
   * `deletionGracePeriodSeconds`, else its `terminationGracePeriodSeconds`). Resolves when all
   * processes are gone. Idempotent; a later call cannot extend an earlier deadline.
   */
  terminate(graceSeconds?: number): Promise<void> {
    this.#stopping.abort();
    if (this.#terminated === undefined) {
      const grace = graceSeconds ?? this.#pod.metadata.deletionGracePeriodSeconds ?? this.#pod.spec.terminationGracePeriodSeconds ?? DEFAULT_TERMINATION_GRACE_SECONDS;
      const deadline = Date.now() + grace * 1000;
      this.#terminated = (async () => {
        await Promise.all(this.#app.map((c) => c.stop(deadline)));
        // Sidecars stop after the main containers, as the kubelet does.
        await Promise.all(this.#init.map((c) => c.stop(deadline)));
        this.#ctx.changed();
      })();
    } else if (graceSeconds === 0) {
      // A force deletion: whatever is left goes now.
      for (const c of [...this.#app, ...this.#init]) c.process?.signal('SIGKILL');
    }
    return this.#terminated;
  }

  /** The pod's processes, for the Prometheus target list. */
  runningContainers(): { container: Container; pid: number }[] {
    return this.#app.flatMap((c) => (c.process !== undefined && c.process.exit === undefined ? [{ container: c.spec, pid: c.process.pid }] : []));
  }

  /** The pod's phase as its containers stand now. */
  get phase(): NonNullable<PodStatus['phase']> {
    return podPhase(this.#pod, this.#init.map((c) => c.status()), this.#app.map((c) => c.status()), { initDone: this.#initDone, terminating: this.terminating });
  }

  /** The status to write, as a strategic-merge patch of `status`. */
  status(now: Date = new Date()): PodStatus {
    const init = this.#init.map((c) => c.status());
    const app = this.#app.map((c) => c.status());
    const phase = podPhase(this.#pod, init, app, { initDone: this.#initDone, terminating: this.terminating && app.every((s) => !isSet(s.state.running)) });
    const conditions = stampConditions(
      podConditions(this.#pod, app, { initDone: this.#initDone, phase }),
      this.#pod.status?.conditions ?? [],
      now.toISOString().replace(/\.\d+Z$/, 'Z'),
    );
    const patchable = (s: ContainerStatus): ContainerStatus => ({ ...s, state: patchableState(s.state), lastState: patchableState(s.lastState) });
    return {
      phase,
      conditions,
      hostIP: this.#ctx.hostIP,
      hostIPs: [{ ip: this.#ctx.hostIP }],
      podIP: this.#ctx.podIP,
      podIPs: [{ ip: this.#ctx.podIP }],
      startTime: this.#pod.status?.startTime ?? this.#startTime.replace(/\.\d+Z$/, 'Z'),
      containerStatuses: app.map(patchable),
      ...(init.length > 0 ? { initContainerStatuses: init.map(patchable) } : {}),
    };
  }

  async #run(): Promise<void> {
    const signal = this.#stopping.signal;
    for (const runner of this.#init) {
      if (signal.aborted) return;
      runner.start();
      if (runner.spec.restartPolicy === 'Always') {
        // A sidecar: the next init container starts once this one has started.
        while (!runner.started && !signal.aborted) await sleep(200, signal);
        continue;
      }
      await runner.done;
      if (runner.exitCode !== 0) return; // restartPolicy Never: the pod failed (see podPhase)
    }
    this.#initDone = true;
    this.#ctx.changed();
    for (const runner of this.#app) if (!signal.aborted) runner.start();
  }

  #containerContext(container: Container, isInit: boolean): ContainerContext {
    const policy = () => this.#pod.spec.restartPolicy ?? 'Always';
    const fieldPath = `spec.${isInit ? 'initContainers' : 'containers'}{${container.name}}`;
    return {
      podIP: this.#ctx.podIP,
      podDir: this.#ctx.podDir,
      image: this.#ctx.image,
      env: (c) => this.#ctx.env(this.#pod, c),
      restartOnExit: (code) => {
        if (isInit && container.restartPolicy === 'Always') return true;
        if (isInit) return code !== 0 && policy() !== 'Never';
        return policy() === 'Always' || (policy() === 'OnFailure' && code !== 0);
      },
      graceMs: () => (this.#pod.spec.terminationGracePeriodSeconds ?? DEFAULT_TERMINATION_GRACE_SECONDS) * 1000,
      backoffMs: this.#ctx.backoffMs,
      changed: this.#ctx.changed,
      event: (type, reason, message) => this.#ctx.event(this.#pod, type, reason, message, fieldPath),
    };
  }
}
