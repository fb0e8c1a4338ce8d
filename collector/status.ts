import type { ComponentKind } from './component.js';
import type { Logger } from './logger.js';

/**
 * Component health, after the Collector's component status: a receiver that
 * cannot attach reports `permanent_error` with the reason and the rest of the
 * pipeline keeps running.
 */
export type Status = 'created' | 'starting' | 'ok' | 'recoverable_error' | 'permanent_error' | 'stopping' | 'stopped';

/** What a running component last finished, for /healthz: a receiver's collection, or a pipeline step's stuck batch. */
export interface Heartbeat {
  /** When the work last completed (or, for a stuck batch, when it arrived), ms since the epoch. */
  lastMs: number;
  /** How often it should complete. */
  intervalMs: number;
  /** What completes, for messages: "collection", "batch". */
  work: string;
}

/** Missed intervals after which a component counts as stalled: one late round is load, three is stuck. */
export const STALLED_AFTER_INTERVALS = 3;

export interface ComponentStatus {
  id: string;
  kind: ComponentKind;
  pipelines: string[];
  status: Status;
  message?: string;
  since: string;
  /** When its periodic work last completed, for components that have it (receivers). */
  lastCompleted?: { work: string; at: string; intervalMs: number };
}

export interface StatusReporter {
  report(status: Status, message?: string): void;
}

/** The graph's hold on a component's status: what it says now, and where its heartbeats come from. */
export interface TrackedStatusReporter extends StatusReporter {
  readonly current: { readonly status: Status; readonly message?: string };
  /** Adds a heartbeat source; undefined from it means nothing is expected now. */
  watch(heartbeat: () => Heartbeat | undefined): void;
}

export interface Health {
  healthy: boolean;
  /** Components failed for good, or running without completing their work for STALLED_AFTER_INTERVALS intervals. */
  failed: { id: string; kind: ComponentKind; message?: string; since: string }[];
  receivers: { id: string; status: Status; lastCollection?: string }[];
}

interface Entry extends Omit<ComponentStatus, 'lastCompleted'> {
  heartbeats: (() => Heartbeat | undefined)[];
}

export class StatusRegistry {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly logger: Logger) {}

  /** One entry per kind and id: a processor listed in two pipelines (two instances) shares it. */
  reporter(kind: ComponentKind, id: string, pipelines: string[]): TrackedStatusReporter {
    const key = `${kind}:${id}`;
    let entry = this.entries.get(key);
    if (entry) entry.pipelines.push(...pipelines.filter((p) => !entry!.pipelines.includes(p)));
    else {
      entry = { id, kind, pipelines: [...pipelines], status: 'created', since: new Date().toISOString(), heartbeats: [] };
      this.entries.set(key, entry);
    }
    const held = entry;
    return {
      get current() {
        return { status: held.status, message: held.message };
      },
      report: (status, message) => {
        if (held.status === status && held.message === message) return;
        held.status = status;
        held.message = message;
        held.since = new Date().toISOString();
        const fields = { component: id, kind, status };
        if (status === 'permanent_error' || status === 'recoverable_error') this.logger.error(fields, message ?? status);
        else this.logger.debug(fields, message ?? status);
      },
      watch: (heartbeat) => {
        held.heartbeats.push(heartbeat);
      },
    };
  }

  snapshot(): ComponentStatus[] {
    return [...this.entries.values()].map(({ heartbeats, ...entry }) => {
      const status: ComponentStatus = { ...entry, pipelines: [...entry.pipelines] };
      const beat = running(entry.status) ? mostOverdue(heartbeats, Date.now()) : undefined;
      if (beat) status.lastCompleted = { work: beat.work, at: new Date(beat.lastMs).toISOString(), intervalMs: beat.intervalMs };
      return status;
    });
  }

  /** Healthy while no component has failed for good and none that runs has gone STALLED_AFTER_INTERVALS intervals without completing its work. */
  health(nowMs = Date.now()): Health {
    const failed: Health['failed'] = [];
    const receivers: Health['receivers'] = [];
    for (const entry of this.entries.values()) {
      const beat = running(entry.status) ? mostOverdue(entry.heartbeats, nowMs) : undefined;
      if (entry.kind === 'receiver')
        receivers.push({ id: entry.id, status: entry.status, ...(beat && { lastCollection: new Date(beat.lastMs).toISOString() }) });
      if (entry.status === 'permanent_error') failed.push({ id: entry.id, kind: entry.kind, message: entry.message, since: entry.since });
      else if (beat && nowMs - beat.lastMs > STALLED_AFTER_INTERVALS * beat.intervalMs) {
        const since = new Date(beat.lastMs).toISOString();
        failed.push({
          id: entry.id,
          kind: entry.kind,
          message: `stalled: no ${beat.work} completed since ${since} (expected every ${beat.intervalMs} ms)`,
          since,
        });
      }
    }
    return { healthy: failed.length === 0, failed, receivers };
  }
}

function running(status: Status): boolean {
  return status === 'ok' || status === 'recoverable_error';
}

/** The heartbeat most overdue for its interval, among those that expect something now. */
function mostOverdue(heartbeats: (() => Heartbeat | undefined)[], nowMs: number): Heartbeat | undefined {
  let found: Heartbeat | undefined;
  let worst = -Infinity;
  for (const source of heartbeats) {
    const beat = source();
    if (!beat) continue;
    const overdue = (nowMs - beat.lastMs) / beat.intervalMs;
    if (overdue > worst) {
      found = beat;
      worst = overdue;
    }
  }
  return found;
}
