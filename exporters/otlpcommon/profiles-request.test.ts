/** ProfileBatch → ExportProfilesServiceRequest, decoded by protoc against the project's schema and the official one. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { ProcessTable } from '../../collector/processes.js';
import { encodeProfilesRequest } from './profiles-request.js';
import { PROJECT_ROOT } from '../../collector/paths.js';
import { PROFILES_SERVICE_PROTO, PROTO_DIR } from './schema.js';
import { FIXTURE_CPU_PROFILE_TOTALS, fixtureCpuProfile } from './testing/fixtures.js';
import { decodeProfilesRequest, summarizeProfiles } from './testing/otlp-sinks.js';
import { checkAgainstOfficialProtos, checkFixtureProfilesRequest } from './testing/request-checks.js';
import { message, messages, scalars } from './testing/protoc.js';

test('the fixture batch encodes to a request protoc reads back field by field', () => {
  const processes = new ProcessTable();
  const encoded = encodeProfilesRequest(fixtureCpuProfile(), (pid) => processes.get(pid));
  assert.equal(encoded.items, FIXTURE_CPU_PROFILE_TOTALS.samples);
  assert.equal(encoded.profiles, FIXTURE_CPU_PROFILE_TOTALS.byPid.size);
  checkFixtureProfilesRequest(encoded.body, { processTableKnowsThisProcess: true });
});

test('the request is what the official opentelemetry-proto v1.11.0 schema reads', () => {
  checkAgainstOfficialProtos(encodeProfilesRequest(fixtureCpuProfile()).body, 'profiles');
});

test('without the process table, a process is named by its comm', () => {
  const encoded = encodeProfilesRequest(fixtureCpuProfile());
  const self = summarizeProfiles(decodeProfilesRequest(encoded.body)).resourceByPid.get(process.pid)!;
  assert.equal(self['process.executable.name'], 'node');
  assert.equal(self['process.executable.path'], undefined);
});

test('one dictionary serves every process: an entry used by two processes is there once', () => {
  const batch = fixtureCpuProfile();
  // The node process's stack, sampled in a second process too.
  batch.samples.push({ ...batch.samples[3], pid: 4_100_003, comm: 'node-worker', count: 4 });
  const request = decodeProfilesRequest(encodeProfilesRequest(batch).body);
  const dictionary = message(request, 'dictionary');
  assert.equal(scalars(dictionary, 'string_table').filter((s) => s === 'node::Start').length, 1);
  const stacks = messages(request, 'resource_profiles').map((r) =>
    scalars(messages(message(message(r, 'scope_profiles'), 'profiles'), 'samples')[0], 'stack_index'),
  );
  assert.deepEqual(stacks[1], stacks[3], 'both processes point at the same stack');
  assert.equal(summarizeProfiles(request).samplesByFunction.get('node::Start'), 15);
});

test('the schema files are tracked by git (no ignore rule catches their profiles/ folders)', () => {
  assert.equal(spawnSync('git', ['-C', PROJECT_ROOT, 'rev-parse', '--is-inside-work-tree']).status, 0, 'the project is not a git checkout');
  for (const file of [PROFILES_SERVICE_PROTO, 'opentelemetry/proto/profiles/v1development/profiles.proto']) {
    const result = spawnSync('git', ['-C', PROJECT_ROOT, 'check-ignore', '--no-index', '-v', join(PROTO_DIR, file)], { encoding: 'utf8' });
    assert.equal(result.status, 1, `git ignores ${file}: ${result.stdout}`);
  }
});
