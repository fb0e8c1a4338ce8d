/** Exporter settings whose self-telemetry a test can read back, as a Prometheus scrape would show it. */
import { pino } from 'pino';
import type { CreateSettings } from '../../../collector/component.js';
import { parseComponentId } from '../../../collector/config/load.js';
import { StatusRegistry } from '../../../collector/status.js';
import { SelfTelemetry } from '../../../collector/telemetry.js';

export interface ObservedSettings {
  settings: CreateSettings;
  /** Sum of ebpf_collector_<name> over the series whose labels include `labels`. */
  total(name: string, labels?: Record<string, string>): Promise<number>;
  /** The component's status as /status would show it. */
  status(): { status: string; message?: string };
}

export function observedSettings(id: string): ObservedSettings {
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const self = new SelfTelemetry();
  const statuses = new StatusRegistry(logger);
  const componentId = parseComponentId(id);
  if (typeof componentId === 'string') throw new Error(componentId);
  return {
    settings: { id: componentId, logger, telemetry: self.forComponent('exporter', id), status: statuses.reporter('exporter', id, ['test']) },
    async total(name, labels = {}) {
      const collected = await self.collect();
      let sum = 0;
      for (const scope of collected.scopeMetrics)
        for (const metric of scope.metrics)
          if (metric.descriptor.name === `ebpf_collector_${name}`)
            for (const point of metric.dataPoints)
              if (Object.entries(labels).every(([k, v]) => point.attributes[k] === v)) sum += point.value as number;
      return sum;
    },
    status() {
      const entry = statuses.snapshot()[0];
      return { status: entry.status, message: entry.message };
    },
  };
}
