// Reads the loader's lines from each kernel's serial log (test/kernels/run.sh)
// and prints one row per BPF object, one column per kernel, then the syscalls
// slot check per kernel. Exits 1 when a kernel's run did not finish or its
// slot check failed.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const [logs, ...kernels] = process.argv.slice(2);
const results = new Map(); // object -> kernel -> cell
const slotChecks = [];
const preemption = [];
let failed = false;

/** The line of libbpf's log that says why an object failed: the verifier's or libbpf's own reason. */
function reason(lines, object) {
  const log = lines.filter((line) => line.startsWith(`LOG ${object} `)).map((line) => line.slice(`LOG ${object} `.length));
  const telling = [/not found in kernel/, /unknown func/, /invalid func/, /failed to resolve CO-RE/, /cannot use helper/, /calling kernel function/, /failed to find/, /libbpf: prog '.*': failed to load/];
  for (const pattern of telling) {
    const line = log.find((entry) => pattern.test(entry));
    if (line) return line.replace(/^libbpf: /, '');
  }
  return log.at(-1) ?? 'no log';
}

for (const kernel of kernels) {
  let text;
  try {
    text = readFileSync(join(logs, `${kernel}.log`), 'utf8');
  } catch {
    text = '';
  }
  const lines = text.split('\n');
  if (!lines.some((line) => line.startsWith('LOADER-EXIT'))) {
    failed = true;
    slotChecks.push(`${kernel}: the run did not finish (see ${join(logs, `${kernel}.log`)})`);
  }
  for (const line of lines) {
    const match = /^RESULT (\S+) (\S+) (.*)$/.exec(line);
    if (!match) continue;
    const [, object, stage, rest] = match;
    if (!results.has(object)) results.set(object, new Map());
    const cell = stage === 'loaded' ? rest : `${stage} FAIL: ${reason(lines, object)}`;
    results.get(object).set(kernel, cell);
  }
  const checks = lines.filter((line) => line.startsWith('RTCHECK '));
  const verdict = checks.find((line) => line.startsWith('RTCHECK result'));
  if (verdict && !verdict.endsWith(' ok')) failed = true;
  slotChecks.push(`${kernel}: ${checks.map((line) => line.slice(8)).join('; ') || 'no slot check'}`);
  const runs = lines.filter((line) => line.startsWith('PREEMPTION ')).map((line) => line.slice('PREEMPTION '.length));
  if (runs.length > 0) preemption.push(`${kernel}: ${runs.join('; ')}`);
}

console.log(`| object | ${kernels.join(' | ')} |`);
console.log(`|---|${kernels.map(() => '---').join('|')}|`);
for (const [object, cells] of [...results].sort()) console.log(`| ${object} | ${kernels.map((kernel) => cells.get(kernel) ?? '-').join(' | ')} |`);
console.log('\nsyscalls slot check (two threads on CPU 0, ping-pong over pipes: every read is switched out mid-syscall):');
for (const line of slotChecks) console.log(`- ${line}`);
console.log('\npreemption inside programs (preemption.bpf.o: runs on each kind of hook, and how many of them were preemptible):');
for (const line of preemption) console.log(`- ${line}`);
process.exit(failed ? 1 : 0);
