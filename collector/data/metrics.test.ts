import assert from 'node:assert/strict';
import { test } from 'node:test';
import { attributesKey } from './metrics.js';

test('attributesKey: one key per attribute set, whatever the insertion order', () => {
  assert.equal(attributesKey({ comm: 'sh', syscall: 'read' }), attributesKey({ syscall: 'read', comm: 'sh' }));
  // Integer-like keys come first in any object: sorted and unsorted insertions still agree.
  assert.equal(attributesKey({ '10': 'a', '2': 'b', z: 'c' }), attributesKey({ z: 'c', '2': 'b', '10': 'a' }));
  assert.notEqual(attributesKey({ a: 'x' }), attributesKey({ a: 'y' }));
  assert.notEqual(attributesKey({ a: 'b', c: '' }), attributesKey({ a: 'b' }));
  // Separators inside values cannot make two sets collide.
  assert.notEqual(attributesKey({ a: 'b","c":"d' }), attributesKey({ a: 'b', c: 'd' }));
});
