import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { unsymbolizedName, type ProfileBatch } from '../../collector/data/profiles.js';
import {
  FIXTURE_API_BINARY,
  FIXTURE_LIBC,
  FIXTURE_NEXT_WINDOW,
  FIXTURE_PERIOD_NS,
  FIXTURE_STRIPPED_LIBRARY,
  FIXTURE_SYMBOLIZED_WINDOW,
  FIXTURE_UNMAPPED_FRAME,
  FIXTURE_UNNAMED_KERNEL_FRAME,
  FIXTURE_UNNAMED_LIBRARY_FRAME,
} from './testing/fixtures.js';
import { goToolPprof, parseRaw, parseTop, type RawProfile } from './testing/go-tool-pprof.js';
import { encodePprof } from './pprof-encoding.js';

const dir = mkdtempSync(join(tmpdir(), 'pprof-encoding-'));
let written = 0;

/** Encodes, writes, and reads back with `go tool pprof -raw` and `-top`, failing on anything it prints to stderr. */
async function roundTrip(batches: ProfileBatch[], emptyWindow = { startMs: 0, endMs: 0 }) {
  const file = join(dir, `profile-${written++}.pb.gz`);
  writeFileSync(file, await encodePprof(batches, emptyWindow));
  const raw = await goToolPprof(['-raw'], file);
  const top = await goToolPprof(['-top', '-sample_index=samples'], file);
  assert.equal(raw.stderr, '', 'go tool pprof -raw warns');
  assert.equal(top.stderr, '', 'go tool pprof -top warns');
  return { raw: parseRaw(raw.stdout), top: parseTop(top.stdout) };
}

/** The sample whose leaf location is named `leaf`, and the names of its stack, leaf first. */
function sampleByLeaf(profile: RawProfile, leaf: string) {
  const matches = profile.samples.filter((s) => profile.locations.get(s.locationIds[0])?.functionName === leaf);
  assert.equal(matches.length, 1, `one sample with leaf ${leaf}`);
  return { ...matches[0], stack: matches[0].locationIds.map((id) => profile.locations.get(id)!.functionName) };
}

test('a window becomes a CPU profile: sample types, period, time and duration from the batch', async () => {
  const { raw } = await roundTrip([FIXTURE_SYMBOLIZED_WINDOW]);
  assert.equal(raw.sampleTypes.replace(/\s+/g, ' '), 'samples/count cpu/nanoseconds');
  assert.equal(raw.periodType, 'cpu nanoseconds');
  assert.equal(raw.period, Math.round(FIXTURE_PERIOD_NS));
  assert.equal(raw.time, '2026-11-22 04:15:00 +0000 UTC');
  assert.equal(raw.duration, '10s');
});

test('sample values are the count and count × period, with pid, comm, container_id and pod_uid labels', async () => {
  const { raw } = await roundTrip([FIXTURE_SYMBOLIZED_WINDOW]);
  assert.equal(raw.samples.length, FIXTURE_SYMBOLIZED_WINDOW.samples.length);
  for (const expected of FIXTURE_SYMBOLIZED_WINDOW.samples) {
    const leaf = expected.frames[0].functionName ?? unsymbolizedName(expected.frames[0]);
    const sample = sampleByLeaf(raw, leaf);
    assert.deepEqual(sample.values, [expected.count, Math.round(expected.count * FIXTURE_PERIOD_NS)], leaf);
    assert.deepEqual(sample.stack, expected.frames.map((f) => f.functionName ?? unsymbolizedName(f)), leaf);
    const labels: Record<string, string> = { pid: String(expected.pid), comm: expected.comm };
    if (expected.containerId) labels.container_id = expected.containerId;
    if (expected.podUid) labels.pod_uid = expected.podUid;
    assert.deepEqual(sample.labels, labels, leaf);
  }
});

test('mappings carry their file, range, offset and build id; kernel frames sit under [kernel.kallsyms]', async () => {
  const { raw } = await roundTrip([FIXTURE_SYMBOLIZED_WINDOW]);
  const byFile = new Map([...raw.mappings.values()].map((m) => [m.file, m]));
  for (const mapping of [FIXTURE_API_BINARY, FIXTURE_LIBC, FIXTURE_STRIPPED_LIBRARY]) {
    const found = byFile.get(mapping.path);
    assert.ok(found, `a mapping for ${mapping.path}`);
    assert.deepEqual([found.start, found.limit, found.offset, found.buildId], [mapping.start, mapping.end, mapping.fileOffset, mapping.buildId]);
  }
  // Named frames with files and lines: has_functions, has_filenames and has_line_numbers.
  assert.equal(byFile.get(FIXTURE_LIBC.path)!.flags, '[FN][FL][LN]');
  assert.equal(byFile.get(FIXTURE_STRIPPED_LIBRARY.path)!.flags, '[FN]');
  const kernelMapping = [...raw.mappings.entries()].find(([, m]) => m.file === '[kernel.kallsyms]');
  assert.ok(kernelMapping, 'a [kernel.kallsyms] mapping');
  const kernelLocations = [...raw.locations.values()].filter((l) => l.mappingId === kernelMapping[0]).map((l) => l.functionName).sort();
  assert.deepEqual(kernelLocations, [unsymbolizedName(FIXTURE_UNNAMED_KERNEL_FRAME), 'ksys_read'].sort());
});

test('functions keep names, files and lines; unnamed frames keep their mapping and address and read as file+offset', async () => {
  const { raw } = await roundTrip([FIXTURE_SYMBOLIZED_WINDOW]);
  const locations = [...raw.locations.values()];
  const read = locations.find((l) => l.functionName === '__libc_read')!;
  assert.deepEqual([read.fileName, read.line], ['read.c', 26]);

  const unnamed = locations.find((l) => l.address === FIXTURE_UNNAMED_LIBRARY_FRAME.address)!;
  assert.equal(unnamed.functionName, 'libstore.so+0x2340');
  const mapping = raw.mappings.get(unnamed.mappingId)!;
  assert.deepEqual([mapping.file, mapping.buildId], [FIXTURE_STRIPPED_LIBRARY.path, FIXTURE_STRIPPED_LIBRARY.buildId]);
  assert.equal(unnamed.address - mapping.start + mapping.offset, 0x2340n, 'a backend can find the file offset from the mapping');

  const unmapped = locations.find((l) => l.address === FIXTURE_UNMAPPED_FRAME.address)!;
  assert.equal(unmapped.functionName, '0x401a0');
  assert.equal(raw.mappings.get(unmapped.mappingId)!.file, '[unknown]');
});

test('go tool pprof -top: flat samples per leaf function, cumulative through callers', async () => {
  const { top } = await roundTrip([FIXTURE_SYMBOLIZED_WINDOW]);
  const flat = (name: string) => top.get(name)?.flat;
  for (const sample of FIXTURE_SYMBOLIZED_WINDOW.samples) {
    const leaf = sample.frames[0].functionName ?? unsymbolizedName(sample.frames[0]);
    assert.equal(flat(leaf), sample.count, leaf);
  }
  const apiSamples = FIXTURE_SYMBOLIZED_WINDOW.samples.filter((s) => s.comm === 'api').reduce((n, s) => n + s.count, 0);
  assert.deepEqual(top.get('main'), { flat: 0, cum: apiSamples });
});

test('merged windows: identical stacks add up and the profile spans both windows', async () => {
  const { raw, top } = await roundTrip([FIXTURE_SYMBOLIZED_WINDOW, FIXTURE_NEXT_WINDOW]);
  assert.equal(raw.duration, '20s');
  const computeCount = [FIXTURE_SYMBOLIZED_WINDOW, FIXTURE_NEXT_WINDOW].flatMap((b) => b.samples).filter((s) => s.frames[0].functionName === 'compute_prices');
  const total = computeCount.reduce((n, s) => n + s.count, 0);
  assert.equal(top.get('compute_prices')?.flat, total);
  assert.deepEqual(sampleByLeaf(raw, 'compute_prices').values, [total, computeCount.reduce((n, s) => n + Math.round(s.count * FIXTURE_PERIOD_NS), 0)]);
  assert.equal(top.get('spin')?.flat, 5);
  const worker = sampleByLeaf(raw, 'spin');
  assert.equal(raw.mappings.get(raw.locations.get(worker.locationIds[0])!.mappingId)!.buildId, '', 'no build id when the symbolizer found none');
});

test('no batches: an empty profile dated by the window, still loadable', async () => {
  const startMs = FIXTURE_SYMBOLIZED_WINDOW.startTimeMs;
  const { raw, top } = await roundTrip([], { startMs, endMs: startMs + 5_000 });
  assert.equal(raw.samples.length, 0);
  assert.equal(raw.duration, '5s');
  assert.equal(top.size, 0);
});
