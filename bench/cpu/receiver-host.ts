/**
 * The cpu receiver alone in a process, as the collector would run it, for
 * bench/cpu/run.sh to measure: created through its factory, started with a
 * host like the collector's, its batches handed to a sink that only counts.
 * Prints "ready" once sampling, and a JSON summary on stdout after SIGTERM.
 *
 * usage: node dist/bench/cpu/receiver-host.js [frequency_hz] [collection_interval]
 */
import type { Consumer } from '../../collector/component.js';
import type { ProfileBatch } from '../../collector/data/profiles.js';
import { cpuReceiverFactory } from '../../receivers/cpu/factory.js';
import { testHost, testSettings } from '../../test/support/components.js';

class CountingSink implements Consumer<'profiles'> {
  batches = 0;
  samples = 0;
  frames = 0;
  async consume(batch: ProfileBatch): Promise<void> {
    this.batches++;
    for (const sample of batch.samples) {
      this.samples += sample.count;
      this.frames += sample.frames.length;
    }
  }
}

const [frequency = '97', interval = '10s'] = process.argv.slice(2);
const config = cpuReceiverFactory.configSchema.parse({ frequency_hz: Number(frequency), collection_interval: interval });
const sink = new CountingSink();
const receiver = cpuReceiverFactory.create(testSettings('receiver', 'cpu'), config, { profiles: sink });
await receiver.start(testHost());
process.stdout.write('ready\n');

process.once('SIGTERM', async () => {
  await receiver.shutdown();
  process.stdout.write(`${JSON.stringify({ batches: sink.batches, samples: sink.samples, frames: sink.frames })}\n`);
  process.exit(0);
});
