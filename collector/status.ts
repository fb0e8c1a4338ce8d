import type { ComponentKind } from './component.js';
import type { Logger } from './logger.js';

/**
 * Component health, after the Collector's component status: a receiver that
 * cannot attach reports `permanent_error` with the reason and the rest of the
 * pipeline keeps running.
 */
export type Status = 'created' | 'starting' | 'ok' | 'recoverable_error' | 'permanent_error' | 'stopping' | 'stopped';

export interface ComponentStatus {
  id: string;
  kind: ComponentKind;
  pipelines: string[];
  status: Status;
  message?: string;
  since: string;
}

export interface StatusReporter {
  report(status: Status, message?: string): void;
}

export class StatusRegistry {
  private readonly entries = new Map<string, ComponentStatus>();

  constructor(private readonly logger: Logger) {}

  reporter(kind: ComponentKind, id: string, pipelines: string[]): StatusReporter {
    const entry: ComponentStatus = { id, kind, pipelines, status: 'created', since: new Date().toISOString() };
    this.entries.set(`${kind}:${id}`, entry);
    return {
      report: (status, message) => {
        if (entry.status === status && entry.message === message) return;
        entry.status = status;
        entry.message = message;
        entry.since = new Date().toISOString();
        const fields = { component: id, kind, status };
        if (status === 'permanent_error' || status === 'recoverable_error') this.logger.error(fields, message ?? status);
        else this.logger.debug(fields, message ?? status);
      },
    };
  }

  snapshot(): ComponentStatus[] {
    return [...this.entries.values()].map((e) => ({ ...e, pipelines: [...e.pipelines] }));
  }
}
