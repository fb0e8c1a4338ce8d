import type { Consumer, Consumers } from './component.js';
import { itemCount, type Signal, type SignalData } from './data/signals.js';
import type { ComponentTelemetry } from './telemetry.js';

/**
 * Hands each batch to every consumer. A consumer that mutates data gets its own
 * copy when others share the batch; the others share one read-only batch.
 */
export function fanout<S extends Signal>(consumers: Consumer<S>[]): Consumer<S> {
  if (consumers.length === 1) return consumers[0];
  return {
    mutatesData: false,
    async consume(data: SignalData[S]) {
      const results = await Promise.allSettled(consumers.map((c) => c.consume(c.mutatesData ? structuredClone(data) : data)));
      const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
      if (failures.length === 1) throw failures[0];
      if (failures.length > 1) throw new AggregateError(failures, `${failures.length} of ${consumers.length} consumers failed`);
    },
  };
}

/** Counts what a component accepts, for `ebpf_collector_received_items_total`. */
export function counting<S extends Signal>(signal: S, telemetry: ComponentTelemetry, inner: Consumer<S>): Consumer<S> {
  const count = itemCount[signal] as (data: SignalData[S]) => number;
  return {
    mutatesData: inner.mutatesData,
    consume(data: SignalData[S]) {
      telemetry.received(signal, count(data));
      return inner.consume(data);
    },
  };
}

/** Sets `consumers[signal]`, keeping the signal and its consumer's data type together. */
export function setConsumer<S extends Signal>(consumers: Consumers, signal: S, consumer: Consumer<S>): void {
  (consumers as Record<S, Consumer<S>>)[signal] = consumer;
}
