/**
 * The Prometheus rules we ship: promtool accepts them, their unit tests in
 * tests/ pass, they carry the contract's names, every rule is unit-tested, and
 * every metric they read is one a component emits (or the rule is pending).
 * test/e2e/prometheus.test.ts shows them returning data from a real collector.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { projectPath } from '../../collector/paths.js';
import { CONTRACT_RECORDING_RULES, metricsReadBy, PENDING_RULES } from '../../test/support/metrics-contract.js';

const RULES_DIR = projectPath('deploy/prometheus/rules');
const TESTS_DIR = projectPath('deploy/prometheus/tests');

const ALERT_SEVERITIES: Record<string, string> = {
  HighCPUConsumption: 'warning',
  MemoryAllocationSpike: 'warning',
  HighLockContention: 'warning',
  HighSyscallErrorRate: 'critical',
  DNSResolutionFailure: 'warning',
  TLSHandshakeFailure: 'critical',
};

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.yml'))
    .sort()
    .map((name) => `${dir}/${name}`);
}

function promtool(...args: string[]): string {
  const result = spawnSync('promtool', args, { cwd: projectPath(), encoding: 'utf8' });
  assert.equal(result.error, undefined, `cannot run promtool: ${result.error}`);
  const output = result.stdout + result.stderr;
  assert.equal(result.status, 0, `promtool ${args.join(' ')} failed:\n${output}`);
  return output;
}

const rules: Rule[] = yamlFiles(RULES_DIR).flatMap((file) =>
  (parse(readFileSync(file, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules),
);

test('promtool check rules accepts every rule file', () => {
  const output = promtool('check', 'rules', ...yamlFiles(RULES_DIR));
  const found = [...output.matchAll(/SUCCESS: (\d+) rules found/g)].reduce((sum, m) => sum + Number(m[1]), 0);
  assert.equal(found, rules.length, output);
});

test('promtool test rules passes every unit test', () => {
  promtool('test', 'rules', ...yamlFiles(TESTS_DIR));
});

test('the recording rules and alerts are the metrics contract\'s', () => {
  assert.deepEqual(
    rules.filter((r) => r.record).map((r) => r.record),
    CONTRACT_RECORDING_RULES,
  );
  const alerts = rules.filter((r) => r.alert);
  assert.deepEqual(Object.fromEntries(alerts.map((a) => [a.alert, a.labels?.severity])), ALERT_SEVERITIES);
  for (const alert of alerts) {
    assert.match(alert.for ?? '', /^\d+m$/, `${alert.alert} needs a for: duration`);
    assert.ok(alert.annotations?.summary && alert.annotations?.description, `${alert.alert} needs a summary and a description`);
  }
});

test('every recording rule and alert has a unit test', () => {
  const tests = yamlFiles(TESTS_DIR).flatMap(
    (file) =>
      (parse(readFileSync(file, 'utf8')) as {
        tests: { promql_expr_test?: { expr: string }[]; alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
      }).tests,
  );
  const exprs = tests.flatMap((t) => t.promql_expr_test ?? []).map((t) => t.expr);
  for (const name of CONTRACT_RECORDING_RULES) assert.ok(exprs.some((e) => e.includes(name)), `no promql_expr_test for ${name}`);
  const alertTests = tests.flatMap((t) => t.alert_rule_test ?? []);
  for (const name of Object.keys(ALERT_SEVERITIES)) {
    const mine = alertTests.filter((t) => t.alertname === name);
    assert.ok(mine.some((t) => t.exp_alerts.length > 0), `no test shows ${name} firing`);
    assert.ok(mine.some((t) => t.exp_alerts.length === 0), `no test shows ${name} silent`);
  }
});

/** The components' source: every .ts file under the component folders, tests and test helpers left out. */
function componentSources(): string {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = `${dir}/${name}`;
      if (statSync(path).isDirectory()) {
        if (name !== 'testing' && name !== 'testdata') walk(path);
      } else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) files.push(path);
    }
  };
  for (const dir of ['collector', 'receivers', 'processors', 'connectors', 'exporters']) walk(projectPath(dir));
  return files.map((file) => readFileSync(file, 'utf8')).join('\n');
}

test('every metric a rule reads is emitted by a component, except where the rule is pending, and only there', () => {
  const sources = componentSources();
  for (const rule of rules) {
    const name = (rule.record ?? rule.alert)!;
    for (const metric of metricsReadBy(rule.expr)) {
      if (name in PENDING_RULES) assert.ok(!sources.includes(`'${metric}'`), `${metric} is emitted now: ${name} is no longer pending (${PENDING_RULES[name]})`);
      else assert.ok(sources.includes(`'${metric}'`), `${name} reads ${metric}, which no component emits`);
    }
  }
  for (const name of Object.keys(PENDING_RULES)) assert.ok(rules.some((r) => (r.record ?? r.alert) === name), `PENDING_RULES names ${name}, which no rule file has`);
});
