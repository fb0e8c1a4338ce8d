/**
 * How long one collection of the syscalls receiver takes: the switch of its
 * counter bank (swapBanks, whose map-in-map update waits an RCU grace period)
 * and the drain of the retired bank, then building the metrics. The receiver
 * runs as the collector runs it, for the whole system, while a getppid loop
 * keeps every CPU's counters busy; each collection's wall time is taken around
 * the receiver's collect(). Then swapBanks() alone, on a second copy of the
 * object, as many times: the wait is for the whole system's programs.
 *
 * usage: node build/dev/bench/syscalls/drain.js [--collections N] [--interval MS] [--aggregate cgroup,pid,tid]
 *        (bench/syscalls/run.sh builds the getppid loop)
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import type { Consumer } from '../../collector/component.js';
import { projectPath } from '../../collector/paths.js';
import { bpfObjectPath } from '../../collector/paths.js';
import { BpfObject } from '../../native/index.js';
import { syscallsReceiverFactory } from '../../receivers/syscalls/factory.js';
import { testHost, testSettings } from '../../test/support/components.js';

const LOOP = projectPath('build/bench/syscalls/getppid_loop');

const { values: options } = parseArgs({
  options: { collections: { type: 'string', default: '40' }, interval: { type: 'string', default: '250' }, aggregate: { type: 'string', default: 'cgroup' } },
});
const collections = Number(options.collections);

let series = 0;
const sink: Consumer<'metrics'> = {
  consume: async (batch) => {
    series = Math.max(series, batch.metrics.find((metric) => metric.name === 'ebpf_syscall_total')?.points.length ?? 0);
  },
};
const config = syscallsReceiverFactory.configSchema.parse({ collection_interval: `${options.interval}ms`, aggregate_by: options.aggregate.split(',') });
const receiver = syscallsReceiverFactory.create(testSettings('receiver', 'syscalls'), config, { metrics: sink });
const collectMs: number[] = [];
const timed = receiver as unknown as { collect: (...args: unknown[]) => Promise<void> };
const collect = timed.collect.bind(receiver);
let done: () => void;
const finished = new Promise<void>((resolve) => (done = resolve));
timed.collect = async (...args: unknown[]) => {
  const start = performance.now();
  await collect(...args);
  collectMs.push(performance.now() - start);
  if (collectMs.length === collections) done();
};

const load = spawn(LOOP, ['1000000000'], { stdio: 'ignore' });
await receiver.start(testHost());
await finished;
await receiver.shutdown();

const swapMs: number[] = [];
const object = BpfObject.open(bpfObjectPath('syscalls'));
object.load();
if (typeof object.swapBanks === 'function')
  for (let i = 0; i < collections; i++) {
    const start = performance.now();
    await object.swapBanks();
    swapMs.push(performance.now() - start);
  }
object.close();
load.kill();

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const max = (values: number[]) => Math.max(...values);
console.log(`${collections} collections every ${options.interval} ms, aggregate_by ${options.aggregate}, up to ${series} ebpf_syscall_total series`);
console.log(`collect():   median ${median(collectMs).toFixed(2)} ms, max ${max(collectMs).toFixed(2)} ms`);
if (swapMs.length > 0) console.log(`swapBanks(): median ${median(swapMs).toFixed(2)} ms, max ${max(swapMs).toFixed(2)} ms (off the JS thread)`);
