/** Backoff: jittered waits around an interval that grows by the multiplier up to max_interval. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ExponentialBackoff } from './backoff.js';
import { retryOnFailureSchema } from './config.js';

test('each wait is the interval ± the randomization factor, the interval grows 1.5× up to max_interval', () => {
  const config = retryOnFailureSchema.parse({}); // 5 s, ×1.5, ±50 %, at most 30 s
  const intervals = [5000, 7500, 11_250, 16_875, 25_312.5, 30_000, 30_000];
  for (let run = 0; run < 50; run++) {
    const backoff = new ExponentialBackoff(config);
    for (const interval of intervals) {
      const wait = backoff.next();
      assert.ok(wait >= interval * 0.5 && wait <= interval * 1.5, `wait ${wait} around ${interval}`);
    }
  }
});

test('the waits are spread, not in lockstep', () => {
  const config = retryOnFailureSchema.parse({});
  const firstWaits = new Set(Array.from({ length: 20 }, () => Math.round(new ExponentialBackoff(config).next())));
  assert.ok(firstWaits.size > 10, `${firstWaits.size} distinct first waits of 20`);
});

test('without randomization the waits are the intervals exactly', () => {
  const backoff = new ExponentialBackoff(retryOnFailureSchema.parse({ initial_interval: '100ms', max_interval: '300ms', multiplier: 2, randomization_factor: 0 }));
  assert.deepEqual([backoff.next(), backoff.next(), backoff.next(), backoff.next()], [100, 200, 300, 300]);
});
