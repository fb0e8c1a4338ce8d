/** Runs the real collector CLI as a child process against a pipeline written for the test. */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { projectPath } from '../../collector/paths.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(200);
  }
}

export class RunningCollector {
  stderr = '';
  private readonly exited: Promise<number | null>;

  private constructor(private readonly child: ChildProcess, readonly statusUrl: string) {
    child.stderr!.on('data', (chunk) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /**
   * Starts `ebpf-collector run` with `yaml` (HTTP_PORT is replaced by the status port) and waits until /status answers.
   * `wrapper` (a command and its options, e.g. setpriv's) runs the launcher in its place; it must exec it, so pid stays the collector's.
   */
  static async start(yaml: string, wrapper: string[] = []): Promise<RunningCollector> {
    const statusPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'ebpf-collector-test-'));
    const configPath = join(dir, 'pipeline.yaml');
    writeFileSync(configPath, yaml.replaceAll('HTTP_PORT', String(statusPort)));
    // Through the launcher, with the memory settings users get.
    const [command, ...args] = [...wrapper, projectPath('bin/ebpf-collector'), 'run', '--config', configPath];
    const child = spawn(command, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const collector = new RunningCollector(child, `http://127.0.0.1:${statusPort}`);
    await eventually('the collector to answer /status', 20_000, async () => {
      if (child.exitCode !== null) throw new Error(`collector exited with ${child.exitCode}: ${collector.stderr}`);
      const response = await fetch(`${collector.statusUrl}/status`);
      const body = (await response.json()) as { components: { status: string }[] };
      // Started once no component is still being created or started.
      return body.components.every((c) => !['created', 'starting'].includes(c.status)) ? true : undefined;
    });
    return collector;
  }

  get pid(): number {
    return this.child.pid!;
  }

  async status(): Promise<{ components: { id: string; kind: string; status: string; message?: string }[] }> {
    return (await fetch(`${this.statusUrl}/status`)).json() as never;
  }

  /** [kind, id, status] of every component, as /status lists them. */
  async statuses(): Promise<string[][]> {
    return (await this.status()).components.map((c) => [c.kind, c.id, c.status]);
  }

  /** Sends SIGTERM and returns the exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }

  /**
   * Ids of the BPF programs the collector holds, from its fds (programs, and
   * links naming theirs): exact even while other collectors load programs.
   */
  programIds(): number[] {
    const dir = `/proc/${this.child.pid}/fdinfo`;
    const ids = new Set<number>();
    for (const fd of readdirSync(dir)) {
      let info: string;
      try {
        info = readFileSync(join(dir, fd), 'utf8');
      } catch {
        continue; // closed meanwhile
      }
      const match = /^prog_id:\s+(\d+)$/m.exec(info);
      if (match) ids.add(Number(match[1]));
    }
    return [...ids];
  }

  /** Stops the collector, which must exit with 0, and waits until the kernel holds none of its programs or their links. */
  async stopAndExpectReleased(): Promise<void> {
    const ours = new Set(this.programIds());
    assert.ok(ours.size > 0, 'the collector holds no BPF program');
    assert.equal(await this.stop(), 0, this.stderr);
    // The kernel frees a program once its last fd and link are gone, a moment after the process exits.
    await eventually('the kernel to release our programs', 3000, async () => {
      const state = kernelBpfState();
      return state.progs.some((p) => ours.has(p.id)) || state.links.some((l) => ours.has(l.prog_id)) ? undefined : true;
    });
  }
}

/** The CLI's config for `receivers` (id: config) in one metrics pipeline to a Prometheus exporter on `metricsPort`. */
export function prometheusPipeline(receivers: Record<string, unknown>, metricsPort: number): string {
  return stringify({
    receivers,
    exporters: { prometheus: { endpoint: `127.0.0.1:${metricsPort}` } },
    service: {
      http: { endpoint: '127.0.0.1:HTTP_PORT' },
      pipelines: { metrics: { receivers: Object.keys(receivers), exporters: ['prometheus'] } },
    },
  });
}

/** Starts the CLI with `receivers` scraped by a Prometheus exporter on a free port. */
export async function startScrapedCollector(receivers: Record<string, unknown>): Promise<{ collector: RunningCollector; metricsPort: number }> {
  const metricsPort = await freePort();
  return { collector: await RunningCollector.start(prometheusPipeline(receivers, metricsPort)), metricsPort };
}

/**
 * Runs `ebpf-collector validate` on `config`: a whole pipeline.yaml, or
 * receivers (id: config) in a metrics pipeline to a Prometheus exporter. It
 * must refuse it with exit status 2 and print every one of `problems`.
 */
export function assertRefusedByValidate(config: string | Record<string, unknown>, problems: RegExp[]): void {
  const yaml =
    typeof config === 'string'
      ? config
      : stringify({ receivers: config, exporters: { prometheus: {} }, service: { pipelines: { metrics: { receivers: Object.keys(config), exporters: ['prometheus'] } } } });
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-collector-validate-'));
  try {
    const path = join(dir, 'pipeline.yaml');
    writeFileSync(path, yaml);
    const result = spawnSync(projectPath('bin/ebpf-collector'), ['validate', '--config', path], { encoding: 'utf8' });
    assert.equal(result.status, 2, result.stderr);
    for (const problem of problems) assert.match(result.stderr, problem);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Reads one sample from a Prometheus exposition; 0 when the series is absent. */
export function sampleValue(exposition: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(match[3]);
  }
  return 0;
}

export async function scrape(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (!response.ok) throw new Error(`scrape answered ${response.status}`);
  return response.text();
}

/** Scrapes `port` until `done` holds for the exposition (or fails after `timeoutMs`, naming `what`), and returns that exposition. */
export async function scrapeUntil(port: number, what: string, timeoutMs: number, done: (exposition: string) => boolean): Promise<string> {
  return eventually(what, timeoutMs, async () => {
    const exposition = await scrape(port);
    return done(exposition) ? exposition : undefined;
  });
}

/** Ids of the BPF programs and links the kernel holds now, from bpftool. */
export function kernelBpfState(): { progs: { id: number; name?: string }[]; links: { id: number; prog_id: number }[] } {
  const run = (what: string) => {
    const result = spawnSync('bpftool', [what, 'show', '--json'], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`bpftool ${what} show failed: ${result.stderr}`);
    return JSON.parse(result.stdout || '[]');
  };
  return { progs: run('prog'), links: run('link') };
}
