import type { ContainerState, ContainerStatus, Pod, PodCondition, PodStatus } from './wire-types.ts';

/** Whether a member of a container state is set (the API and patches use `null` for unset). */
export function isSet<T>(value: T | null | undefined): value is T {
  return value !== undefined && value !== null;
}

/** Phase of a pod from its containers' statuses, after the kubelet's `getPhase`. */
export function podPhase(
  pod: Pod,
  init: readonly ContainerStatus[],
  app: readonly ContainerStatus[],
  options: { readonly initDone: boolean; readonly terminating: boolean },
): NonNullable<PodStatus['phase']> {
  const policy = pod.spec.restartPolicy ?? 'Always';
  if (!options.initDone) {
    const failedInit = init.some((s) => isSet(s.state.terminated) && s.state.terminated.exitCode !== 0);
    return failedInit && policy === 'Never' ? 'Failed' : 'Pending';
  }
  let neverRan = 0;
  let running = 0;
  let failed = 0;
  for (const s of app) {
    const ended = isSet(s.state.terminated) ? s.state.terminated : s.lastState.terminated;
    // A container waiting to restart counts as it last ended.
    if (isSet(s.state.running)) running++;
    else if (isSet(ended)) {
      if (ended.exitCode !== 0) failed++;
    } else neverRan++;
  }
  if (neverRan > 0 && !options.terminating) return 'Pending';
  if (running > 0 && !options.terminating) return 'Running';
  if (options.terminating && running === 0) return failed > 0 || neverRan > 0 ? 'Failed' : 'Succeeded';
  if (running > 0) return 'Running';
  switch (policy) {
    case 'Always': return 'Running';
    case 'OnFailure': return failed > 0 ? 'Running' : 'Succeeded';
    case 'Never': return failed > 0 ? 'Failed' : 'Succeeded';
  }
}

/** The conditions the kubelet owns, derived from the containers and the readiness gates. */
export function podConditions(
  pod: Pod,
  app: readonly ContainerStatus[],
  options: { readonly initDone: boolean; readonly phase: NonNullable<PodStatus['phase']> },
): { type: string; status: 'True' | 'False'; reason?: string; message?: string }[] {
  const terminal = options.phase === 'Succeeded' || options.phase === 'Failed';
  const unready = app.filter((s) => !s.ready).map((s) => s.name);
  const containersReady = unready.length === 0 && !terminal;
  const gates = pod.spec.readinessGates ?? [];
  const existing = pod.status?.conditions ?? [];
  const missingGates = gates
    .map((g) => g.conditionType)
    .filter((t) => existing.find((c) => c.type === t)?.status !== 'True');
  const notReady = (reason: string, message: string) => ({ status: 'False' as const, reason, message });
  const containersCondition = containersReady
    ? { status: 'True' as const }
    : terminal
      ? notReady('PodCompleted', '')
      : notReady('ContainersNotReady', `containers with unready status: [${unready.join(' ')}]`);
  const readyCondition = !containersReady
    ? containersCondition
    : missingGates.length > 0
      ? notReady('ReadinessGatesNotReady', `corresponding condition of pod readiness gate "${missingGates.join('", "')}" does not exist or is False`)
      : { status: 'True' as const };
  return [
    { type: 'PodReadyToStartContainers', status: terminal ? 'False' : 'True' },
    { type: 'Initialized', ...(options.initDone ? { status: 'True' as const } : notReady('ContainersNotInitialized', 'containers with incomplete status')) },
    { type: 'ContainersReady', ...containersCondition },
    { type: 'Ready', ...readyCondition },
  ];
}

/**
 * Keeps `lastTransitionTime` of conditions whose status did not change since `previous`, and
 * stamps `now` on the rest. A missing reason or message is sent as `null`, or a strategic-merge
 * patch would keep the old one.
 */
export function stampConditions(
  next: readonly { type: string; status: 'True' | 'False'; reason?: string; message?: string }[],
  previous: readonly PodCondition[],
  now: string,
): PodCondition[] {
  return next.map((c) => {
    const prev = previous.find((p) => p.type === c.type);
    return {
      ...c,
      reason: c.reason ?? null,
      message: c.message ?? null,
      lastProbeTime: null,
      lastTransitionTime: prev !== undefined && prev.status === c.status ? (prev.lastTransitionTime ?? now) : now,
    };
  });
}

/**
 * A container state for a strategic-merge patch: the two members that do not apply are sent as
 * `null`, or the patch would merge `terminated` into the old `running` and leave both.
 */
export function patchableState(state: ContainerState): ContainerState {
  return { waiting: state.waiting ?? null, running: state.running ?? null, terminated: state.terminated ?? null };
}
