import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProfileBatch } from '../../collector/data/profiles.js';
import { FIXTURE_NEXT_WINDOW, FIXTURE_SYMBOLIZED_WINDOW } from './testing/fixtures.js';
import { encodeFolded } from './folded-encoding.js';

test('folded stacks: comm first, then root to leaf, one sorted line per stack with its samples', () => {
  assert.equal(
    encodeFolded([FIXTURE_SYMBOLIZED_WINDOW]),
    [
      'api;main;__libc_read;ksys_read 60',
      'api;main;compute_prices 25',
      'api;main;libstore.so+0x2340 15',
      'postgres;0x401a0 3',
      'postgres;0xffffffff81002a10 7',
      '',
    ].join('\n'),
  );
});

test('folded stacks add up across windows', () => {
  const lines = encodeFolded([FIXTURE_SYMBOLIZED_WINDOW, FIXTURE_NEXT_WINDOW]).trimEnd().split('\n');
  assert.ok(lines.includes('api;main;compute_prices 65'));
  assert.ok(lines.includes('worker;spin 5'));
  assert.equal(lines.length, 6);
});

test('names cannot break the format: ";" and newlines inside a name are replaced', () => {
  // Fixture: a Rust-style name with a ";" in a type parameter, and a process without a comm.
  const FIXTURE_AWKWARD_NAMES: ProfileBatch = {
    startTimeMs: 0,
    endTimeMs: 1_000,
    periodNs: 1e9 / 97,
    samples: [
      { pid: 1, comm: 'svc', count: 2, frames: [{ kind: 'user', address: 1n, functionName: 'drop<[u8; 4]>\nx' }] },
      { pid: 2, comm: '', count: 1, frames: [] },
    ],
  };
  assert.equal(encodeFolded([FIXTURE_AWKWARD_NAMES]), '[unknown] 1\nsvc;drop<[u8: 4]> x 2\n');
});

test('no batches: an empty body', () => {
  assert.equal(encodeFolded([]), '');
});
