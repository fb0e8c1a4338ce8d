/**
 * Runs a real Prometheus (Debian's /usr/bin/prometheus) for integration tests:
 * it scrapes the given targets every 2 s and evaluates the given rule files every
 * second, keeps its data in a temporary directory, and answers instant queries.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectPath } from '../../collector/paths.js';
import { eventually, freePort } from './collector.js';

const PROMETHEUS_BINARY = '/usr/bin/prometheus';
/** The job name the targets are scraped under, so queries can select them by `job`. */
const SCRAPE_JOB = 'ebpf-collector';

/** The project's rule files (deploy/prometheus/rules/*.yml), as absolute paths. */
export function projectRuleFiles(): string[] {
  const dir = projectPath('deploy/prometheus/rules');
  return readdirSync(dir)
    .filter((name) => name.endsWith('.yml'))
    .map((name) => `${dir}/${name}`);
}

export interface PrometheusOptions {
  /** host:port of each scrape target; metrics are read from /metrics. */
  targets: string[];
  /** Absolute paths of rule files to load. */
  ruleFiles?: string[];
}

export interface QuerySample {
  labels: Record<string, string>;
  value: number;
}

export class RunningPrometheus {
  /** Prometheus' log (stdout and stderr), for failure messages. */
  log = '';
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly url: string,
  ) {
    child.stdout!.on('data', (chunk) => (this.log += chunk));
    child.stderr!.on('data', (chunk) => (this.log += chunk));
    this.exited = new Promise((resolve) => {
      child.once('exit', () => resolve());
      // A binary that cannot be spawned emits 'error' and maybe no 'exit'.
      child.once('error', (error) => {
        this.log += String(error);
        resolve();
      });
    });
  }

  /** Starts Prometheus on a free loopback port and waits until /-/ready answers 200. */
  static async start(options: PrometheusOptions): Promise<RunningPrometheus> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'ebpf-collector-prometheus-'));
    const configPath = join(dir, 'prometheus.yml');
    // JSON is YAML, so the config needs no YAML writer. A whole pipeline's exposition (1.5 MB) can take more than
    // a second to serve on a loaded machine, and a failed scrape marks every series stale.
    const config = {
      global: { scrape_interval: '2s', scrape_timeout: '2s', evaluation_interval: '1s' },
      rule_files: options.ruleFiles ?? [],
      scrape_configs: [{ job_name: SCRAPE_JOB, static_configs: [{ targets: options.targets }] }],
    };
    writeFileSync(configPath, JSON.stringify(config, null, 2));
    const child = spawn(
      PROMETHEUS_BINARY,
      [`--config.file=${configPath}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const prometheus = new RunningPrometheus(child, dir, `http://127.0.0.1:${port}`);
    try {
      await eventually('Prometheus to be ready', 30_000, async () => {
        if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined)
          throw new Error(`prometheus is not running: ${prometheus.log}`);
        return (await fetch(`${prometheus.url}/-/ready`)).ok ? true : undefined;
      });
    } catch (error) {
      await prometheus.stop();
      throw error;
    }
    return prometheus;
  }

  /** An instant query through /api/v1/query; the result must be a vector. */
  async query(expr: string): Promise<QuerySample[]> {
    const response = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await response.json()) as {
      status: string;
      error?: string;
      data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
    };
    if (body.status !== 'success' || !body.data) throw new Error(`query ${expr} failed: ${body.error ?? response.status}`);
    if (body.data.resultType !== 'vector') throw new Error(`query ${expr} returned a ${body.data.resultType}, not a vector`);
    return body.data.result.map(({ metric, value }) => ({ labels: metric, value: parseSampleValue(value[1]) }));
  }

  /** Polls `expr` until it returns at least one sample; recording rules' first values need two scrapes and an evaluation. */
  async firstSamples(expr: string, timeoutMs: number): Promise<QuerySample[]> {
    return eventually(`${expr} to return data`, timeoutMs, async () => {
      const samples = await this.query(expr);
      return samples.length > 0 ? samples : undefined;
    });
  }

  /** The rules Prometheus loaded, every group's, from /api/v1/rules. */
  async rules(): Promise<{ name: string; health: string; lastError?: string }[]> {
    const body = (await (await fetch(`${this.url}/api/v1/rules`)).json()) as {
      data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
    };
    return body.data.groups.flatMap((g) => g.rules);
  }

  /** Waits until rules are loaded and every one has been evaluated without error. */
  async everyRuleHealthy(timeoutMs: number): Promise<void> {
    await eventually('every rule to be evaluated without error', timeoutMs, async () => {
      const rules = await this.rules();
      const bad = rules.filter((r) => r.health !== 'ok');
      if (rules.length === 0 || bad.length > 0) throw new Error(rules.length ? JSON.stringify(bad) : 'no rules loaded');
      return true;
    });
  }

  /** Stops Prometheus (SIGTERM, SIGKILL after 10 s) and deletes its config and data. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const kill = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(kill);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The API writes sample values as strings, infinities as "+Inf" and "-Inf", which Number() does not read. */
function parseSampleValue(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}
