/**
 * Test-only components that fail the way a component with a bug would, for
 * the CLI's lifecycle tests (test/e2e/lifecycle.test.ts) through the test
 * entrypoint beside this file. The collector has no known path to these
 * faults; if it had one, that would be the bug to fix.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { Component, Consumers, ExporterFactory } from '../component.js';

const FAULTS = ['uncaught_exception', 'unhandled_rejection', 'shutdown_never_ends', 'shutdown_blocks_a_thread'] as const;
type Fault = (typeof FAULTS)[number];

const faultyConfigSchema = z.object({ fault: z.enum(FAULTS) }).strict();

/** Consumes like an exporter that discards; at its first batch (or its shutdown) it fails with `fault`. */
class FaultyExporter implements Component {
  readonly consumers: Consumers;
  private batches = 0;

  constructor(private readonly fault: Fault) {
    const consume = async () => this.batchArrived();
    this.consumers = { metrics: { consume }, profiles: { consume } };
  }

  private batchArrived(): void {
    if (this.batches++ > 0) return;
    // Thrown from a callback of its own, outside any consume(): nobody up the stack can catch it.
    if (this.fault === 'uncaught_exception')
      setImmediate(() => {
        throw new Error('faulty exporter: thrown in a callback');
      });
    // A promise nobody awaits or handles.
    if (this.fault === 'unhandled_rejection') void Promise.reject(new Error('faulty exporter: a rejection nobody handles'));
  }

  async start(): Promise<void> {}

  async shutdown(): Promise<void> {
    if (this.fault === 'shutdown_never_ends') return new Promise(() => undefined);
    if (this.fault === 'shutdown_blocks_a_thread') {
      // Opening a FIFO nobody writes to blocks one of libuv's threads in open() for ever, as a hung file system would.
      const fifo = join(mkdtempSync(join(tmpdir(), 'ebpf-collector-fault-')), 'fifo');
      execFileSync('mkfifo', [fifo]);
      await open(fifo, 'r');
    }
  }
}

export const faultyExporterFactory: ExporterFactory<z.output<typeof faultyConfigSchema>> = {
  kind: 'exporter',
  type: 'faulty',
  configSchema: faultyConfigSchema,
  signals: ['metrics', 'profiles'],
  create: (_settings, config) => new FaultyExporter(config.fault),
};
