/**
 * /healthz and a receiver whose collection stops completing: the real process
 * receiver (its BPF programs attached, its loop timing the heartbeat), with a
 * collect() the test makes stall, inside a real Collector.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import type { BpfObject } from '../native/index.js';
import { processReceiverFactory } from '../receivers/process/factory.js';
import { ProcessReceiver } from '../receivers/process/receiver.js';
import { eventually } from '../test/support/collector.js';
import { Collector } from './collector.js';
import type { Consumer, ReceiverFactory } from './component.js';
import { FACTORIES } from './components.js';
import { resolveConfig } from './config/load.js';
import type { Health } from './status.js';

class StallingProcessReceiver extends ProcessReceiver {
  static latest?: StallingProcessReceiver;
  private stalled?: { release: () => void; promise: Promise<void> };

  stall(): void {
    let release!: () => void;
    const promise = new Promise<void>((resolve) => (release = resolve));
    this.stalled = { release, promise };
  }

  release(): void {
    this.stalled?.release();
    this.stalled = undefined;
  }

  protected override async collect(object: BpfObject, startMs: number, endMs: number): Promise<void> {
    await this.stalled?.promise;
    await super.collect(object, startMs, endMs);
  }
}

const stallingProcessFactory: ReceiverFactory<{ collection_interval: number }> = {
  ...processReceiverFactory,
  type: 'stalling_process',
  create: (settings, config, next) => (StallingProcessReceiver.latest = new StallingProcessReceiver(settings, config, next.metrics as Consumer<'metrics'>)),
};

async function health(address: string): Promise<{ code: number; body: Health }> {
  const response = await fetch(`${address}/healthz`);
  return { code: response.status, body: (await response.json()) as Health };
}

test('a receiver whose collection has not completed for three intervals makes /healthz 503, naming it and since when; shutdown past its deadline names it', async () => {
  const intervalMs = 300;
  const config = resolveConfig(
    {
      receivers: { stalling_process: { collection_interval: `${intervalMs}ms` } },
      processors: { window: { window: '1s' } },
      exporters: { prometheus: { endpoint: '127.0.0.1:0' } },
      service: {
        http: { endpoint: '127.0.0.1:0' },
        shutdown_timeout: '1s',
        pipelines: { metrics: { receivers: ['stalling_process'], processors: ['window'], exporters: ['prometheus'] } },
      },
    },
    [...FACTORIES, stallingProcessFactory],
  );
  const collector = new Collector(config, pino({ level: 'silent' }));
  const address = await collector.start();
  const receiver = StallingProcessReceiver.latest!;
  let stalledAt = 0;
  try {
    const healthy = await eventually('a completed collection on /healthz', 5000, async () => {
      const answer = await health(address);
      return answer.body.receivers[0]?.lastCollection && Date.parse(answer.body.receivers[0].lastCollection) > Date.now() - 5000 ? answer : undefined;
    });
    assert.equal(healthy.code, 200);
    assert.deepEqual(healthy.body.failed, []);
    assert.equal(healthy.body.receivers[0].id, 'stalling_process');

    receiver.stall();
    stalledAt = Date.now();
    const unhealthy = await eventually('/healthz to name the stalled receiver', 10_000, async () => {
      const answer = await health(address);
      return answer.code === 503 ? answer : undefined;
    });
    assert.equal(unhealthy.body.healthy, false);
    assert.equal(unhealthy.body.failed.length, 1);
    const [failed] = unhealthy.body.failed;
    assert.equal(failed.id, 'stalling_process');
    assert.equal(failed.kind, 'receiver');
    assert.match(failed.message!, /^stalled: no collection completed since \S+ \(expected every 300 ms\)$/);
    // Since the last collection that completed: around the stall (one in progress then may still have ended), over three intervals ago.
    const since = Date.parse(failed.since);
    assert.ok(Math.abs(since - stalledAt) < 2000, `since ${failed.since}, stalled at ${new Date(stalledAt).toISOString()}`);
    assert.ok(Date.now() - since > 3 * intervalMs, `unhealthy ${Date.now() - since} ms after the last collection`);
    assert.equal(unhealthy.body.receivers[0].lastCollection, failed.since);

    // Shutdown waits for the stuck collection, so its deadline ends it and names what had not stopped.
    const started = Date.now();
    const notStopped = await collector.shutdown();
    assert.ok(Date.now() - started < 3000, `shutdown took ${Date.now() - started} ms with a 1 s deadline`);
    assert.deepEqual(notStopped, ['receiver "stalling_process" (stopping)', 'processor "window (metrics)" (waiting)', 'exporter "prometheus" (waiting)']);
  } finally {
    // Let the shutdown that gave up finish, so that the receiver's BPF links go before the test ends.
    receiver.release();
    await collector.shutdown();
    await eventually('the receiver to stop', 5000, async () =>
      collector.statuses.snapshot().every((s) => s.status === 'stopped') ? true : undefined,
    );
  }
});
