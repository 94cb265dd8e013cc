import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IpPool } from './ip-pool.ts';

test('hands out loopback addresses round-robin and keeps a pod on its address', () => {
  const pool = new IpPool(7, 250);
  assert.equal(pool.allocate('a'), '127.0.7.250');
  assert.equal(pool.allocate('a'), '127.0.7.250');
  assert.equal(pool.allocate('b'), '127.0.7.251');
  pool.release('a');
  assert.equal(pool.allocate('c'), '127.0.7.252', 'a released address is not reused at once');
  assert.equal(pool.allocate('d', '127.0.7.250'), '127.0.7.250', 'a free preferred address is kept');
  assert.equal(pool.allocate('e'), '127.0.7.253');
  assert.equal(pool.allocate('f'), '127.0.7.254');
  assert.throws(() => pool.allocate('g'), { code: 'CLUSTER_ERR_POD_SPEC' });
  assert.equal(pool.contains('127.0.8.250'), false);
});
