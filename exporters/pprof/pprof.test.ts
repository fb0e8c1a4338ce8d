import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import type { Host } from '../../collector/component.js';
import { profileSampleCount, type ProfileBatch } from '../../collector/data/profiles.js';
import { SelfTelemetry } from '../../collector/telemetry.js';
import { eventually } from '../../test/support/collector.js';
import { selfMetric, testHost, testSettings } from '../../test/support/components.js';
import { pprofExporterFactory } from './factory.js';
import { FIXTURE_NEXT_WINDOW, FIXTURE_SYMBOLIZED_WINDOW, FIXTURE_WINDOW_START_MS, fixtureAt } from './testing/fixtures.js';
import { goToolPprof, parseTop } from './testing/go-tool-pprof.js';

function create(config: Record<string, unknown>) {
  const telemetry = new SelfTelemetry();
  const settings = { ...testSettings('exporter', 'pprof'), telemetry: telemetry.forComponent('exporter', 'pprof') };
  const exporter = pprofExporterFactory.create(settings, pprofExporterFactory.configSchema.parse(config), new Set(['profiles'] as const));
  const consume = (batch: ProfileBatch) => exporter.consumers.profiles!.consume(batch);
  const status = () => settings.statuses.snapshot()[0];
  return { exporter, consume, status, telemetry };
}

/** Sum of one self-telemetry counter over its series. */
async function counter(telemetry: SelfTelemetry, name: string, reason?: string): Promise<number> {
  return (await selfMetric(telemetry, name, reason === undefined ? {} : { reason })) ?? 0;
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'pprof-exporter-'));
}

/** Flat sample counts by function, as `go tool pprof -top` reads the file, which must not make it warn. */
async function topOf(file: string): Promise<Map<string, number>> {
  const { stdout, stderr } = await goToolPprof(['-top', '-sample_index=samples'], file);
  assert.equal(stderr, '', `go tool pprof warns about ${file}`);
  return new Map([...parseTop(stdout)].map(([name, { flat }]) => [name, flat]));
}

test('config: defaults, and unknown keys or bad values are errors with their path', () => {
  assert.deepEqual(pprofExporterFactory.configSchema.parse({}), {
    directory: './profiles',
    max_files: 100,
    write_files: true,
    max_concurrent_requests: 4,
    max_samples_per_request: 200_000,
  });
  const unknown = pprofExporterFactory.configSchema.safeParse({ dir: '/tmp' });
  assert.equal(unknown.success, false);
  assert.match(JSON.stringify(unknown.error!.issues), /"unrecognized_keys".*"dir"/);
  const zero = pprofExporterFactory.configSchema.safeParse({ max_files: 0 });
  assert.deepEqual(zero.error!.issues[0].path, ['max_files']);
  const notBool = pprofExporterFactory.configSchema.safeParse({ write_files: 'yes' });
  assert.deepEqual(notBool.error!.issues[0].path, ['write_files']);
});

test('lifecycle: shutdown without start, and twice', async () => {
  const { exporter } = create({ directory: tempDir() });
  await exporter.shutdown();
  await exporter.shutdown();
});

test('lifecycle: start, shut down, start a fresh instance, shut down', async () => {
  const directory = tempDir();
  for (let round = 0; round < 2; round++) {
    const { exporter, consume } = create({ directory });
    await exporter.start(testHost());
    await consume(fixtureAt(FIXTURE_SYMBOLIZED_WINDOW, FIXTURE_WINDOW_START_MS + round * 10_000, 10_000));
    await exporter.shutdown();
    await exporter.shutdown();
  }
  assert.equal(readdirSync(directory).length, 2, 'each instance wrote its batch');
});

test('one file per batch, named by its window start, loading in go tool pprof with the batch counts', async () => {
  const directory = tempDir();
  const { exporter, consume, telemetry, status } = create({ directory });
  await exporter.start(testHost());
  await consume(FIXTURE_SYMBOLIZED_WINDOW);
  await consume(FIXTURE_NEXT_WINDOW);
  await exporter.shutdown();
  assert.deepEqual(readdirSync(directory).sort(), ['cpu-20261122T041500Z.pb.gz', 'cpu-20261122T041510Z.pb.gz']);
  const first = await topOf(join(directory, 'cpu-20261122T041500Z.pb.gz'));
  assert.equal(first.get('ksys_read'), 60);
  assert.equal(first.get('compute_prices'), 25);
  assert.equal(first.get('spin'), undefined, 'the next window is in the next file');
  const second = await topOf(join(directory, 'cpu-20261122T041510Z.pb.gz'));
  assert.equal(second.get('compute_prices'), 40);
  assert.equal(second.get('spin'), 5);
  const samples = profileSampleCount(FIXTURE_SYMBOLIZED_WINDOW) + profileSampleCount(FIXTURE_NEXT_WINDOW);
  assert.equal(await counter(telemetry, 'ebpf_collector_exported_items_total'), samples);
  assert.equal(status().status, 'ok');
});

test('windows starting within one second get distinct names', async () => {
  const directory = tempDir();
  const { exporter, consume } = create({ directory });
  await consume(fixtureAt(FIXTURE_SYMBOLIZED_WINDOW, FIXTURE_WINDOW_START_MS, 400));
  await consume(fixtureAt(FIXTURE_NEXT_WINDOW, FIXTURE_WINDOW_START_MS + 400, 400));
  await exporter.shutdown();
  assert.deepEqual(readdirSync(directory).sort(), ['cpu-20261122T041500Z-1.pb.gz', 'cpu-20261122T041500Z.pb.gz']);
  assert.equal((await topOf(join(directory, 'cpu-20261122T041500Z-1.pb.gz'))).get('spin'), 5);
});

test('max_files: the oldest go first, files of an earlier run included, and no temporary files stay', async () => {
  const directory = tempDir();
  // An earlier run's profile and a file that is not ours.
  writeFileSync(join(directory, 'cpu-20260101T000000Z.pb.gz'), 'old');
  writeFileSync(join(directory, 'notes.txt'), 'keep me');
  const { exporter, consume } = create({ directory, max_files: 3 });
  for (let i = 0; i < 5; i++) await consume(fixtureAt(FIXTURE_SYMBOLIZED_WINDOW, FIXTURE_WINDOW_START_MS + i * 10_000, 10_000));
  await exporter.shutdown();
  assert.deepEqual(readdirSync(directory).sort(), ['cpu-20261122T041520Z.pb.gz', 'cpu-20261122T041530Z.pb.gz', 'cpu-20261122T041540Z.pb.gz', 'notes.txt']);
});

test('a symlink planted at the target or at a predictable temporary name is not followed; the profile is a new 0640 file', async () => {
  const directory = tempDir();
  const elsewhere = tempDir();
  const victim = join(elsewhere, 'victim');
  const temporaryVictim = join(elsewhere, 'temporary-victim');
  writeFileSync(victim, 'untouched', { mode: 0o600 });
  writeFileSync(temporaryVictim, 'untouched too', { mode: 0o600 });
  const target = join(directory, 'cpu-20261122T041500Z.pb.gz');
  symlinkSync(victim, target);
  // Where a writer naming its temporary file after its pid would put it.
  symlinkSync(temporaryVictim, join(directory, `.cpu-20261122T041500Z.pb.gz.${process.pid}.tmp`));
  const { exporter, consume, status } = create({ directory });
  // A umask that would narrow 0640: the file's mode must not depend on it.
  const umask = process.umask(0o077);
  try {
    await consume(FIXTURE_SYMBOLIZED_WINDOW);
  } finally {
    process.umask(umask);
    await exporter.shutdown();
  }
  assert.equal(status().status, 'ok', status().message);
  assert.equal(readFileSync(victim, 'utf8'), 'untouched');
  assert.equal(readFileSync(temporaryVictim, 'utf8'), 'untouched too');
  assert.equal(lstatSync(victim).mode & 0o777, 0o600);
  const written = lstatSync(target);
  assert.ok(written.isFile(), 'the symlink was replaced by a regular file');
  assert.equal(written.mode & 0o777, 0o640);
  assert.equal((await topOf(target)).get('ksys_read'), 60);
  assert.deepEqual(readdirSync(directory).filter((name) => name.endsWith('.tmp')), [`.cpu-20261122T041500Z.pb.gz.${process.pid}.tmp`], 'only the planted one');
});

test('a write that fails is counted and reported as recoverable_error, and the next one recovers', async () => {
  const parent = tempDir();
  // A regular file where the directory should be: nothing can be created under it (even as root).
  const blocker = join(parent, 'blocked');
  writeFileSync(blocker, '');
  const directory = join(blocker, 'profiles');
  const { exporter, consume, telemetry, status } = create({ directory });
  await exporter.start(testHost());
  await consume(FIXTURE_SYMBOLIZED_WINDOW);
  assert.equal(status().status, 'recoverable_error');
  assert.ok(status().message!.startsWith(`cannot write a profile to ${directory}: ENOTDIR`), status().message);
  assert.equal(await counter(telemetry, 'ebpf_collector_export_failed_items_total'), profileSampleCount(FIXTURE_SYMBOLIZED_WINDOW));
  assert.equal(await counter(telemetry, 'ebpf_collector_exported_items_total'), 0);

  rmSync(blocker);
  await consume(FIXTURE_NEXT_WINDOW);
  assert.equal(status().status, 'ok');
  assert.deepEqual(readdirSync(directory), ['cpu-20261122T041510Z.pb.gz']);
  await exporter.shutdown();
});

test('write_files: false writes nothing and counts batches no request took as dropped', async () => {
  const directory = join(tempDir(), 'profiles');
  const { exporter, consume, telemetry } = create({ directory, write_files: false });
  await exporter.start(testHost());
  await consume(FIXTURE_SYMBOLIZED_WINDOW);
  await exporter.shutdown();
  assert.equal(existsSync(directory), false);
  assert.equal(await counter(telemetry, 'ebpf_collector_dropped_items_total', 'no_profiling_request'), profileSampleCount(FIXTURE_SYMBOLIZED_WINDOW));
});

/** An exporter serving the profiling API on a test host whose server is ready for inject(). */
async function serving(config: Record<string, unknown> = { write_files: false }) {
  const created = create(config);
  const host: Host = testHost();
  await created.exporter.start(host);
  await host.http.ready();
  return { ...created, http: host.http };
}

/** Feeds `batches` (dated now, `spanMs` long) 100 ms apart, starting once the request's window is open. */
async function feed(consume: (b: ProfileBatch) => Promise<void>, batches: ProfileBatch[], spanMs: number) {
  await sleep(200);
  for (const batch of batches) {
    await consume(fixtureAt(batch, Date.now() - spanMs, spanMs));
    await sleep(100);
  }
}

test('GET /debug/pprof/profile?seconds=N: the batches of the next N seconds, merged, as a gzip\'d pprof', async () => {
  const { exporter, consume, http } = await serving();
  try {
    await consume(fixtureAt(FIXTURE_NEXT_WINDOW, Date.now() - 1_000, 1_000)); // before the request: not in its window
    const response = http.inject({ method: 'GET', url: '/debug/pprof/profile?seconds=2' });
    const requestedMs = Date.now();
    await feed(consume, [FIXTURE_SYMBOLIZED_WINDOW, FIXTURE_SYMBOLIZED_WINDOW], 1_000);
    const answer = await response;
    assert.ok(Date.now() - requestedMs >= 1_900, 'answered after the window');
    await consume(fixtureAt(FIXTURE_NEXT_WINDOW, Date.now() - 1_000, 1_000)); // after it: not either

    assert.equal(answer.statusCode, 200);
    assert.equal(answer.headers['content-type'], 'application/octet-stream');
    assert.equal(answer.headers['content-disposition'], 'attachment; filename="profile.pb.gz"');
    const file = join(tempDir(), 'profile.pb.gz');
    writeFileSync(file, answer.rawPayload);
    const top = await topOf(file);
    assert.equal(top.get('ksys_read'), 2 * 60);
    assert.equal(top.get('libstore.so+0x2340'), 2 * 15);
    assert.equal(top.get('spin'), undefined, 'batches outside the window stay out');
    const profile = Profile.decode(gunzipSync(answer.rawPayload));
    assert.equal(Number(profile.period), Math.round(FIXTURE_SYMBOLIZED_WINDOW.periodNs));
  } finally {
    await exporter.shutdown();
  }
});

test('GET /debug/pprof/folded?seconds=N&pid=P: folded stacks of those processes', async () => {
  const { exporter, consume, http } = await serving();
  try {
    const response = http.inject({ method: 'GET', url: '/debug/pprof/folded?seconds=1&pid=77,9001' });
    await feed(consume, [FIXTURE_SYMBOLIZED_WINDOW, FIXTURE_NEXT_WINDOW], 1_000);
    const answer = await response;
    assert.equal(answer.statusCode, 200);
    assert.equal(answer.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(answer.body, 'postgres;0x401a0 3\npostgres;0xffffffff81002a10 7\nworker;spin 5\n');
  } finally {
    await exporter.shutdown();
  }
});

test('GET /debug/pprof/profile?pid=P keeps only that process', async () => {
  const { exporter, consume, http } = await serving();
  try {
    const response = http.inject({ method: 'GET', url: '/debug/pprof/profile?seconds=1&pid=4242' });
    await feed(consume, [FIXTURE_SYMBOLIZED_WINDOW], 1_000);
    const file = join(tempDir(), 'profile.pb.gz');
    writeFileSync(file, (await response).rawPayload);
    const top = await topOf(file);
    assert.equal(top.get('compute_prices'), 25);
    assert.equal(top.get('0x401a0'), undefined, 'pid 77 is filtered out');
  } finally {
    await exporter.shutdown();
  }
});

test('bad seconds or pid: 400 with the reason; seconds shorter than the collection interval too', async () => {
  const { exporter, consume, http } = await serving();
  try {
    for (const query of ['seconds=abc', 'seconds=0', 'seconds=301', 'seconds=1.5', 'seconds=']) {
      const answer = await http.inject({ method: 'GET', url: `/debug/pprof/profile?${query}` });
      assert.equal(answer.statusCode, 400, query);
      assert.match(answer.body, /^seconds must be a whole number from 1 to 300, got "/, query);
    }
    for (const query of ['seconds=1&pid=abc', 'seconds=1&pid=0', 'seconds=1&pid=12,', 'seconds=1&pid=-3']) {
      const answer = await http.inject({ method: 'GET', url: `/debug/pprof/folded?${query}` });
      assert.equal(answer.statusCode, 400, query);
      assert.match(answer.body, /^pid must be a process id or a comma-separated list of them, got "/, query);
    }
    // Once batches of a 10 s interval arrive, a 5 s window could not see one.
    await consume(FIXTURE_SYMBOLIZED_WINDOW);
    const short = await http.inject({ method: 'GET', url: '/debug/pprof/profile?seconds=5' });
    assert.equal(short.statusCode, 400);
    assert.equal(short.body, "seconds=5 is shorter than the time between batches (10s, the receiver's collection_interval): no batch would arrive in time; ask for seconds=10 or more\n");
    // A batch spans a little more than the interval (the read takes time): 1.3 s of span still allows seconds=1.
    await consume(fixtureAt(FIXTURE_SYMBOLIZED_WINDOW, Date.now() - 1_300, 1_300));
    assert.equal((await http.inject({ method: 'GET', url: '/debug/pprof/folded?seconds=1' })).statusCode, 200);
  } finally {
    await exporter.shutdown();
  }
});

test('GET /debug/pprof/ lists both endpoints', async () => {
  const { exporter, http } = await serving();
  try {
    for (const url of ['/debug/pprof/', '/debug/pprof']) {
      const answer = await http.inject({ method: 'GET', url });
      assert.equal(answer.statusCode, 200);
      assert.match(answer.headers['content-type'] as string, /^text\/html/);
      assert.match(answer.body, /href="profile\?seconds=30"/);
      assert.match(answer.body, /href="folded\?seconds=30"/);
    }
  } finally {
    await exporter.shutdown();
  }
});

test('shutdown answers a pending request with what it collected; later requests get 503', async () => {
  const { exporter, consume, http } = await serving();
  const response = http.inject({ method: 'GET', url: '/debug/pprof/folded?seconds=300' });
  await feed(consume, [FIXTURE_NEXT_WINDOW], 1_000);
  const shutdownAtMs = Date.now();
  await exporter.shutdown();
  const answer = await response;
  assert.ok(Date.now() - shutdownAtMs < 1_000, 'answered at shutdown, not after 300 s');
  assert.equal(answer.statusCode, 200);
  assert.equal(answer.body, 'api;main;compute_prices 40\nworker;spin 5\n');
  const after = await http.inject({ method: 'GET', url: '/debug/pprof/profile?seconds=1' });
  assert.equal(after.statusCode, 503);
});

test('a second pprof exporter on the same server only writes files', async () => {
  const host = testHost();
  const first = create({ write_files: false });
  const directory = tempDir();
  const second = create({ directory });
  await first.exporter.start(host);
  await second.exporter.start(host);
  await second.consume(FIXTURE_SYMBOLIZED_WINDOW);
  await host.http.ready();
  const answer = await host.http.inject({ method: 'GET', url: '/debug/pprof/' });
  assert.equal(answer.statusCode, 200);
  await first.exporter.shutdown();
  await second.exporter.shutdown();
  assert.equal(readdirSync(directory).length, 1);
});

test('go tool pprof fetches /debug/pprof/profile from the listening server', async () => {
  const { exporter, consume, http } = await serving();
  try {
    const address = await http.listen({ host: '127.0.0.1', port: 0 });
    let fetching = true;
    const fetched = goToolPprof(['-top', '-sample_index=samples'], `${address}/debug/pprof/profile?seconds=2`).finally(() => (fetching = false));
    // go tool pprof takes a moment to start: feed a batch every 250 ms until it has its answer.
    let fed = 0;
    for (; fetching; fed++) {
      await consume(fixtureAt(FIXTURE_NEXT_WINDOW, Date.now() - 250, 250));
      await sleep(250);
    }
    const { stdout, stderr } = await fetched;
    assert.deepEqual(
      stderr.trim().split('\n').map((line) => line.replace(/ .*/, '')),
      ['Fetching', 'Saved'],
      `only "Fetching profile over HTTP" and "Saved profile in": ${stderr}`,
    );
    // Each batch holds 5 samples of spin; the 2 s window saw some of the batches fed, whole.
    const spin = parseTop(stdout).get('spin')?.flat ?? 0;
    assert.ok(spin > 0 && spin % 5 === 0 && spin < 5 * fed, `spin ${spin} after ${fed} batches`);
  } finally {
    await exporter.shutdown();
    await http.close();
  }
});

test('a client that hangs up ends its window', async () => {
  const { exporter, consume, http, telemetry } = await serving();
  try {
    const address = await http.listen({ host: '127.0.0.1', port: 0 });
    const request = httpGet(`${address}/debug/pprof/profile?seconds=300`);
    const hungUp = new Promise((resolve) => request.once('close', resolve));
    request.once('error', () => undefined);
    await feed(consume, [FIXTURE_NEXT_WINDOW], 1_000);
    assert.equal(await counter(telemetry, 'ebpf_collector_exported_items_total'), profileSampleCount(FIXTURE_NEXT_WINDOW), 'the open window took it');
    request.destroy();
    await hungUp;
    await sleep(200);
    await consume(FIXTURE_NEXT_WINDOW);
    assert.equal(await counter(telemetry, 'ebpf_collector_dropped_items_total', 'no_profiling_request'), profileSampleCount(FIXTURE_NEXT_WINDOW), 'no window is open any more');
  } finally {
    await exporter.shutdown();
    await http.close();
  }
});

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A real GET on the listening server; `answered` is set once the answer is complete (status -1: the request failed). */
function get(url: string) {
  const request = httpGet(url);
  const state: { answered?: Answer; answer: Promise<Answer>; request: typeof request } = { request, answer: undefined! };
  state.answer = new Promise<Answer>((resolve) => {
    const fail = (error: Error) => resolve({ status: -1, headers: {}, body: error.message });
    request.once('error', fail);
    request.once('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.once('end', () => resolve({ status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks).toString('latin1') }));
      response.once('error', fail);
    });
  }).then((answer) => (state.answered = answer));
  return state;
}

test('concurrent profiling requests beyond max_concurrent_requests (default 4) get 429; a freed slot takes the next', async () => {
  const { exporter, http } = await serving();
  const address = await http.listen({ host: '127.0.0.1', port: 0 });
  const requests = Array.from({ length: 6 }, (_, i) => get(`${address}/debug/pprof/${i % 2 ? 'folded' : 'profile'}?seconds=300`));
  try {
    // Nothing closes a 300 s window before shutdown: exactly the two requests beyond four are refused, whatever their order.
    await eventually('two answers', 30_000, async () => (requests.filter((r) => r.answered).length >= 2 ? true : undefined));
    const refused = requests.filter((r) => r.answered).map((r) => r.answered!);
    assert.deepEqual(refused.map((a) => a.status), [429, 429]);
    for (const answer of refused) {
      assert.equal(
        answer.body,
        "4 profiling requests are running already, the most the pprof exporter's max_concurrent_requests allows; try again when one has finished\n",
      );
      const retryAfter = Number(answer.headers['retry-after']);
      assert.ok(retryAfter > 250 && retryAfter <= 300, `Retry-After ${answer.headers['retry-after']}: when the first window ends`);
    }

    // One client hangs up: its slot is free again, and a new request is served.
    const hungUp = requests.find((r) => !r.answered)!;
    hungUp.request.destroy();
    const served = await eventually('a new request taken after a client hung up', 30_000, async () => {
      const result = await get(`${address}/debug/pprof/folded?seconds=1`).answer;
      return result.status === 200 ? result : undefined;
    });
    assert.equal(served.headers['x-dropped-samples'], '0');
  } finally {
    await exporter.shutdown();
  }
  // Shutdown answered the three still open with what they had.
  const answers = await Promise.all(requests.map((r) => r.answer));
  assert.deepEqual(answers.map((a) => a.status).sort(), [-1, 200, 200, 200, 429, 429]);
  await http.close();
});

test('a request holds at most max_samples_per_request samples: the rest are left out, counted and reported', async () => {
  const { exporter, consume, http, telemetry } = await serving({ write_files: false, max_samples_per_request: 3 });
  const response = http.inject({ method: 'GET', url: '/debug/pprof/folded?seconds=300' });
  // The first batch's first three samples fit (60 + 25 + 15); its last two (7 + 3) and all of the next (40 + 5) do not.
  await feed(consume, [FIXTURE_SYMBOLIZED_WINDOW, FIXTURE_NEXT_WINDOW], 1_000);
  await exporter.shutdown();
  const answer = await response;
  assert.equal(answer.statusCode, 200);
  assert.equal(answer.headers['x-dropped-samples'], '55');
  assert.equal(answer.body, 'api;main;__libc_read;ksys_read 60\napi;main;compute_prices 25\napi;main;libstore.so+0x2340 15\n');
  assert.equal(await counter(telemetry, 'ebpf_collector_dropped_items_total', 'profiling_request_full'), 55);
});
