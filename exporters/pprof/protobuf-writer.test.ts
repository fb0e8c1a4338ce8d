import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Location, Profile } from 'pprof-format';
import { ProtobufWriter } from './protobuf-writer.js';

// pprof-format's decoder is an independent reader of the same wire format.

test('varints of every width, 64-bit values and zero defaults read back', () => {
  const out = new ProtobufWriter(4);
  out.uint(1, 0x7f); // id: one byte
  out.uint(2, 2 ** 40 + 3); // mapping_id: six bytes, beyond 32 bits
  out.uint64(3, 0xffff_ffff_8100_0000n); // address: a kernel address, ten bytes
  out.uint(4, 0); // defaults are left out
  const location = Location.decode(out.finish());
  assert.equal(location.id, 0x7f);
  assert.equal(BigInt(location.mappingId), 2n ** 40n + 3n);
  assert.equal(BigInt(location.address), 0xffff_ffff_8100_0000n);
});

test('nested messages longer than 127 bytes get their multi-byte length, and the buffer grows', () => {
  const out = new ProtobufWriter(8);
  const names = ['', 'a'.repeat(200), 'ünïcödé', 'main'];
  for (const name of names) out.string(6, name);
  const sample = out.begin(2);
  const ids = out.begin(1);
  for (let id = 1; id <= 300; id++) out.packed(id);
  out.end(ids);
  out.end(sample);
  out.uint64(9, 1_795_000_000_000_000_000n);
  const profile = Profile.decode(out.finish());
  assert.deepEqual(profile.stringTable.strings, names);
  assert.equal(profile.sample.length, 1);
  assert.deepEqual(profile.sample[0].locationId.map(Number), Array.from({ length: 300 }, (_, i) => i + 1));
  assert.equal(BigInt(profile.timeNanos), 1_795_000_000_000_000_000n);
});
