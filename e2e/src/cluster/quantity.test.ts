import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseQuantity } from './quantity.ts';

test('parses decimal, binary and exponent quantities', () => {
  assert.equal(parseQuantity('500m'), 0.5);
  assert.equal(parseQuantity('2'), 2);
  assert.equal(parseQuantity('1.5'), 1.5);
  assert.equal(parseQuantity('128Mi'), 128 * 2 ** 20);
  assert.equal(parseQuantity('1Gi'), 2 ** 30);
  assert.equal(parseQuantity('2G'), 2e9);
  assert.equal(parseQuantity('1e3'), 1000);
  assert.equal(parseQuantity('1k'), 1000);
});

test('rejects what is not a quantity', () => {
  for (const bad of ['', 'abc', '1Xi', '1 Gi', '--1']) {
    assert.throws(() => parseQuantity(bad), { code: 'CLUSTER_ERR_POD_SPEC' }, bad);
  }
});
