import type { MetricBatch } from './metrics.js';
import { metricPointCount } from './metrics.js';
import type { ProfileBatch } from './profiles.js';
import { profileSampleCount } from './profiles.js';

/** The signals a pipeline can carry, as named in `service.pipelines`. */
export const SIGNALS = ['metrics', 'profiles'] as const;
export type Signal = (typeof SIGNALS)[number];

export interface SignalData {
  metrics: MetricBatch;
  profiles: ProfileBatch;
}

/** How many items (data points, samples) a batch carries, for self-telemetry. */
export const itemCount: { [S in Signal]: (data: SignalData[S]) => number } = {
  metrics: metricPointCount,
  profiles: profileSampleCount,
};
