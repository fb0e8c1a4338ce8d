/** The sending queue's accounting: both bounds hold, and a request too large for them is told apart from a full queue. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BoundedQueue, type QueuedRequest } from './queue.js';

const request = (items: number, bytes: number): QueuedRequest => ({ body: new Uint8Array(bytes), items, serverUnits: items });

test('the items bound and the bytes bound each refuse what would pass them', () => {
  const queue = new BoundedQueue(10, 1000);
  assert.equal(queue.offer(request(6, 100)), 'accepted');
  assert.equal(queue.offer(request(5, 100)), 'full', '11 items');
  assert.equal(queue.offer(request(4, 901)), 'full', '1001 bytes');
  assert.equal(queue.offer(request(4, 900)), 'accepted');
  assert.deepEqual([queue.items, queue.bytes, queue.length], [10, 1000, 2]);
});

test('a request larger than a bound is too large, even for an empty queue', () => {
  const queue = new BoundedQueue(10, 1000);
  assert.equal(queue.offer(request(11, 1)), 'too_large');
  assert.equal(queue.offer(request(1, 1001)), 'too_large');
  assert.deepEqual([queue.items, queue.bytes, queue.length], [0, 0, 0]);
});

test('the head stays counted until removed; drain empties everything', () => {
  const queue = new BoundedQueue(10, 1000);
  const first = request(2, 20);
  queue.offer(first);
  queue.offer(request(3, 30));
  assert.equal(queue.peek(), first);
  assert.deepEqual([queue.items, queue.bytes], [5, 50], 'peek does not release the head');
  queue.remove();
  assert.deepEqual([queue.items, queue.bytes, queue.length], [3, 30, 1]);
  assert.equal(queue.drain().length, 1);
  assert.deepEqual([queue.items, queue.bytes, queue.length, queue.peek()], [0, 0, 0, undefined]);
});
