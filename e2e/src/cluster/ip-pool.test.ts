import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IpPool, parseIpv4Cidr } from './ip-pool.ts';

test('hands out addresses of the pod range round-robin and keeps a pod on its address', () => {
  const pool = new IpPool('10.244.7.0/24', 250);
  assert.equal(pool.allocate('a'), '10.244.7.250');
  assert.equal(pool.allocate('a'), '10.244.7.250');
  assert.equal(pool.allocate('b'), '10.244.7.251');
  pool.release('a');
  assert.equal(pool.allocate('c'), '10.244.7.252', 'a released address is not reused at once');
  assert.equal(pool.allocate('d', '10.244.7.250'), '10.244.7.250', 'a free preferred address is kept');
  assert.equal(pool.allocate('e'), '10.244.7.253');
  assert.equal(pool.allocate('f'), '10.244.7.254');
  assert.throws(() => pool.allocate('g'), { code: 'CLUSTER_ERR_POD_SPEC' });
  assert.equal(pool.contains('10.244.8.250'), false);
  assert.equal(pool.contains('10.244.7.255'), false, 'the broadcast address is not handed out');
});

test('a preferred address outside the range (a pod of the old loopback layout) gets a new one', () => {
  const pool = new IpPool('10.244.1.0/24');
  assert.equal(pool.allocate('a', '127.0.1.10'), '10.244.1.10');
  assert.equal(pool.allocate('b', '10.244.1.3'), '10.244.1.11', 'below the first pod host');
});

test('works for ranges other than a /24 and refuses what is not an IPv4 CIDR', () => {
  const pool = new IpPool('10.245.0.0/23', 254);
  assert.deepEqual(['a', 'b', 'c', 'd'].map((o) => pool.allocate(o)), ['10.245.0.254', '10.245.0.255', '10.245.1.0', '10.245.1.1']);
  assert.deepEqual(parseIpv4Cidr('10.244.3.0/24'), { network: ((10 * 256 + 244) * 256 + 3) * 256, size: 256 });
  for (const bad of ['10.244.3.1/24', '10.244.3.0', '10.244.300.0/24', 'fd00::/64', '10.244.3.0/33']) {
    assert.throws(() => parseIpv4Cidr(bad), { code: 'CLUSTER_ERR_POD_SPEC' }, bad);
  }
  assert.throws(() => new IpPool('10.244.3.0/30', 10), { code: 'CLUSTER_ERR_POD_SPEC' });
});
