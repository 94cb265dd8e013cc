import assert from 'node:assert/strict';
import { test } from 'node:test';
import { patchableState, podConditions, podPhase, stampConditions } from './pod-status.ts';
import type { ContainerStatus, Pod } from './wire-types.ts';

const pod = (restartPolicy: 'Always' | 'OnFailure' | 'Never', gates: string[] = []): Pod => ({
  metadata: { name: 'p', uid: 'u' },
  spec: { containers: [{ name: 'a', image: 'i' }], restartPolicy, readinessGates: gates.map((conditionType) => ({ conditionType })) },
});

const status = (over: Partial<ContainerStatus>): ContainerStatus => ({
  name: 'a', image: 'i', imageID: 'i', ready: false, restartCount: 0, state: {}, lastState: {}, ...over,
});

const running = status({ ready: true, state: { running: { startedAt: 't' } } });
const exited = (exitCode: number) => status({ state: { terminated: { exitCode, reason: 'x', finishedAt: 't' } } });
const waiting = status({ state: { waiting: { reason: 'ContainerCreating' } } });
const open = { initDone: true, terminating: false };

test('phase follows the containers and the restart policy', () => {
  assert.equal(podPhase(pod('Always'), [], [waiting], open), 'Pending');
  assert.equal(podPhase(pod('Always'), [], [running], open), 'Running');
  assert.equal(podPhase(pod('Always'), [], [exited(1)], open), 'Running');
  assert.equal(podPhase(pod('Never'), [], [exited(1)], open), 'Failed');
  assert.equal(podPhase(pod('Never'), [], [exited(0)], open), 'Succeeded');
  assert.equal(podPhase(pod('OnFailure'), [], [exited(0)], open), 'Succeeded');
  assert.equal(podPhase(pod('Always'), [], [exited(0)], { initDone: true, terminating: true }), 'Succeeded');
  assert.equal(podPhase(pod('Always'), [], [exited(137)], { initDone: true, terminating: true }), 'Failed');
  assert.equal(podPhase(pod('Always'), [], [waiting], { initDone: false, terminating: false }), 'Pending');
});

test('Ready needs every container ready and every readiness gate True', () => {
  const ready = (p: Pod, s: ContainerStatus) => podConditions(p, [s], { initDone: true, phase: 'Running' }).find((c) => c.type === 'Ready');
  assert.equal(ready(pod('Always'), running)?.status, 'True');
  assert.equal(ready(pod('Always'), waiting)?.reason, 'ContainersNotReady');
  assert.equal(ready(pod('Always', ['x/gate']), running)?.reason, 'ReadinessGatesNotReady');
  const gated: Pod = { ...pod('Always', ['x/gate']), status: { conditions: [{ type: 'x/gate', status: 'True' }] } };
  assert.equal(ready(gated, running)?.status, 'True');
});

test('lastTransitionTime moves only when the status changes', () => {
  const prev = [{ type: 'Ready', status: 'False' as const, lastTransitionTime: 'old' }, { type: 'Initialized', status: 'True' as const, lastTransitionTime: 'old' }];
  const next = stampConditions([{ type: 'Ready', status: 'True' }, { type: 'Initialized', status: 'True' }], prev, 'now');
  assert.deepEqual(next.map((c) => c.lastTransitionTime), ['now', 'old']);
});

test('a patchable state nulls the members that do not apply', () => {
  assert.deepEqual(patchableState({ running: { startedAt: 't' } }), { waiting: null, running: { startedAt: 't' }, terminated: null });
});
