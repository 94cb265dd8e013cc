import assert from 'node:assert/strict';
import { test } from 'node:test';
import { commandForImage, containerArgv, imageRepository } from './images.ts';
import { NODE_BIN, REPO_ROOT } from './paths.ts';

test('strips tags and digests but keeps registry ports', () => {
  assert.equal(imageRepository('switchboard/signaling'), 'switchboard/signaling');
  assert.equal(imageRepository('ghcr.io/acme/switchboard/signaling:1.2.3'), 'ghcr.io/acme/switchboard/signaling');
  assert.equal(imageRepository('localhost:5000/switchboard/operator@sha256:abc'), 'localhost:5000/switchboard/operator');
  assert.equal(imageRepository('reg:5000/switchboard/operator:v1@sha256:abc'), 'reg:5000/switchboard/operator');
});

test('maps the project images to local commands and nothing else', () => {
  const signaling = commandForImage('ghcr.io/x/switchboard/signaling:dev');
  assert.deepEqual(signaling?.entrypoint, [NODE_BIN, '--disable-warning=ExperimentalWarning', 'signaling/server/src/main.ts']);
  assert.equal(signaling?.bindAddressEnv, 'SWITCHBOARD_HOST');
  assert.deepEqual(commandForImage('switchboard/operator:1')?.entrypoint, [NODE_BIN, '--disable-warning=ExperimentalWarning', 'operator/src/main.ts']);
  assert.equal(commandForImage('nginx:1.27'), undefined);
  assert.equal(commandForImage('evil/notswitchboard/signaling'), undefined);
});

test('command replaces the entrypoint and args follow, as in a container runtime', () => {
  const image = { entrypoint: [NODE_BIN, 'a.ts'], cwd: REPO_ROOT };
  assert.deepEqual(containerArgv(image, undefined, undefined), [NODE_BIN, 'a.ts']);
  assert.deepEqual(containerArgv(image, undefined, ['--x']), [NODE_BIN, 'a.ts', '--x']);
  assert.deepEqual(containerArgv(image, ['node', 'b.ts'], ['--y']), [NODE_BIN, 'b.ts', '--y']);
  assert.deepEqual(containerArgv(image, ['/bin/true'], undefined), ['/bin/true']);
});
