/** Runs the real collector CLI as a child process against a pipeline written for the test. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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

  /** Starts `ebpf-collector run` with `yaml` (HTTP_PORT is replaced by the status port) and waits until /status answers. */
  static async start(yaml: string): Promise<RunningCollector> {
    const statusPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'ebpf-collector-test-'));
    const configPath = join(dir, 'pipeline.yaml');
    writeFileSync(configPath, yaml.replaceAll('HTTP_PORT', String(statusPort)));
    // Through the launcher, with the memory settings users get.
    const child = spawn(projectPath('bin/ebpf-collector'), ['run', '--config', configPath], {
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

  async status(): Promise<{ components: { id: string; kind: string; status: string; message?: string }[] }> {
    return (await fetch(`${this.statusUrl}/status`)).json() as never;
  }

  /** Sends SIGTERM and returns the exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
    return this.exited;
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

/** Ids of the BPF programs and links the kernel holds now, from bpftool. */
export function kernelBpfState(): { progs: { id: number; name?: string }[]; links: { id: number; prog_id: number }[] } {
  const run = (what: string) => {
    const result = spawnSync('bpftool', [what, 'show', '--json'], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`bpftool ${what} show failed: ${result.stderr}`);
    return JSON.parse(result.stdout || '[]');
  };
  return { progs: run('prog'), links: run('link') };
}
