/**
 * Profiles → metrics: `parca_cpu_samples_total{function, pod, namespace,
 * container, comm}` counting samples by leaf (self) function, and
 * `parca_cpu_sampling_frequency_hertz`, so that CPU share is samples/s ÷ Hz.
 * Function cardinality is bounded per window (one incoming batch): the top_k
 * leaf functions by samples keep their names, the others are summed as
 * function="[other]", still split by pod, container and comm so that
 * per-pod CPU stays whole.
 */
import type { Component, Consumer, CreateSettings } from '../../collector/component.js';
import type { NumberPoint } from '../../collector/data/metrics.js';
import { unsymbolizedName, type ProfileBatch } from '../../collector/data/profiles.js';
import type { ProfileMetricsConfig } from './config.js';

export const OTHER_FUNCTIONS = '[other]';

export class ProfileMetricsConnector implements Component, Consumer<'profiles'> {
  constructor(private readonly settings: CreateSettings, private readonly config: ProfileMetricsConfig, private readonly next: Consumer<'metrics'>) {}

  async consume(batch: ProfileBatch): Promise<void> {
    const { samples } = batch;
    const byFunction = new Map<string, number>();
    const leaves: string[] = new Array(samples.length);
    for (let i = 0; i < samples.length; i++) {
      const leaf = samples[i].frames[0];
      const name = !leaf ? '[unknown]' : (leaf.functionName ?? unsymbolizedName(leaf));
      byFunction.set(name, (byFunction.get(name) ?? 0) + samples[i].count);
      leaves[i] = name;
    }
    const kept = new Set([...byFunction.entries()].sort((a, b) => b[1] - a[1]).slice(0, this.config.top_k).map(([name]) => name));

    // Keyed by the attribute values in their fixed order: cheaper per sample than attributesKey's canonical JSON.
    const points = new Map<string, NumberPoint>();
    let folded = 0;
    for (let i = 0; i < samples.length; i++) {
      const sample = samples[i];
      const named = kept.has(leaves[i]);
      if (!named) folded += sample.count;
      const fn = named ? leaves[i] : OTHER_FUNCTIONS;
      const pod = sample.podUid ?? '';
      const container = sample.containerId ?? '';
      const key = `${fn}\0${pod}\0${container}\0${sample.comm}`;
      const point = points.get(key);
      if (point) point.value += sample.count;
      else points.set(key, { attributes: { function: fn, pod, namespace: '', container, comm: sample.comm }, value: sample.count });
    }
    if (folded > 0)
      this.settings.telemetry.count('profile_samples_folded_total', 'Samples counted as function="[other]" because their leaf was outside the top_k.', folded);

    await this.next.consume({
      startTimeMs: batch.startTimeMs,
      endTimeMs: batch.endTimeMs,
      metrics: [
        {
          type: 'sum',
          name: 'parca_cpu_samples_total',
          description: 'CPU samples by leaf (self) function.',
          monotonic: true,
          temporality: 'delta',
          points: [...points.values()],
        },
        {
          type: 'gauge',
          name: 'parca_cpu_sampling_frequency_hertz',
          description: 'CPU samples taken per second per CPU; cores used = rate(parca_cpu_samples_total) / this.',
          points: [{ attributes: {}, value: 1e9 / batch.periodNs }],
        },
      ],
    });
  }

  async start(): Promise<void> {}

  async shutdown(): Promise<void> {}
}
