/**
 * The Dockerfile, without a Docker engine (the development machines have only
 * the docker client). It is checked statically (base images, packages, every
 * COPY source in the build context) and then built here the way docker would:
 * the build context is copied as .dockerignore filters it, the build stage's
 * COPY and RUN steps run in a scratch root (its apt-get steps are checked with
 * dpkg-query instead, this machine being the same Debian 12 with Node 20), the
 * runtime stage's files are assembled in a second root, and the collector is
 * started from that root and must collect. So a file the image forgets, a step
 * that fails, a dev dependency the runtime needs or a library the addon links
 * that the runtime stage does not install all fail here.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { projectPath } from '../../collector/paths.js';
import { eventually, freePort, sampleValue, scrape } from '../support/collector.js';

// ---------------------------------------------------------------- parsing

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

interface Stage {
  base: string;
  name?: string;
  instructions: Instruction[];
}

/** Instructions with continuation lines joined; comments and parser directives dropped. */
function parseInstructions(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending: { text: string; line: number } | undefined;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line.startsWith('#') || (!pending && line === '')) return;
    const continued = line.endsWith('\\');
    const part = continued ? line.slice(0, -1) : line;
    pending = pending ? { text: `${pending.text} ${part}`, line: pending.line } : { text: part, line: index + 1 };
    if (continued) return;
    const match = /^(\w+)\s+([\s\S]*)$/.exec(pending.text.trim());
    assert.ok(match, `Dockerfile line ${pending.line}: cannot parse "${pending.text}"`);
    instructions.push({ keyword: match[1].toUpperCase(), args: match[2].trim(), line: pending.line });
    pending = undefined;
  });
  return instructions;
}

/** Stages, with global ARG defaults substituted into FROM. */
function parseStages(text: string): Stage[] {
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const instruction of parseInstructions(text)) {
    if (instruction.keyword === 'ARG' && stages.length === 0) {
      const [name, value] = instruction.args.split('=');
      args[name] = value;
      continue;
    }
    if (instruction.keyword === 'FROM') {
      const [image, as, name] = instruction.args.replace(/\$\{(\w+)\}/g, (_, arg) => args[arg] ?? '').split(/\s+/);
      assert.ok(as === undefined || as.toUpperCase() === 'AS', `Dockerfile line ${instruction.line}: FROM image [AS name]`);
      stages.push({ base: image, name, instructions: [] });
      continue;
    }
    assert.ok(stages.length > 0, `Dockerfile line ${instruction.line}: ${instruction.keyword} before FROM`);
    stages.at(-1)!.instructions.push(instruction);
  }
  return stages;
}

interface Copy {
  from?: string;
  sources: string[];
  destination: string;
}

function parseCopy(instruction: Instruction): Copy {
  const words = instruction.args.split(/\s+/);
  const flags = words.filter((word) => word.startsWith('--'));
  assert.ok(flags.every((flag) => flag.startsWith('--from=')), `Dockerfile line ${instruction.line}: only --from is understood here`);
  const paths = words.filter((word) => !word.startsWith('--'));
  assert.ok(paths.length >= 2, `Dockerfile line ${instruction.line}: COPY needs a source and a destination`);
  for (const path of paths) assert.ok(!/[*?[]/.test(path), `Dockerfile line ${instruction.line}: wildcards are not emulated`);
  return { from: flags[0]?.slice('--from='.length), sources: paths.slice(0, -1), destination: paths.at(-1)! };
}

/** The packages of an `apt-get install` RUN; undefined for any other RUN. Such a RUN may do nothing else. */
function aptPackages(instruction: Instruction): string[] | undefined {
  if (!/\bapt-get\b/.test(instruction.args)) return undefined;
  const steps = instruction.args.split('&&').map((step) => step.trim());
  const install = steps.find((step) => /\bapt-get install\b/.test(step));
  assert.ok(install, `Dockerfile line ${instruction.line}: an apt-get RUN installs packages`);
  for (const step of steps)
    assert.ok(step === install || step === 'apt-get update' || step === 'rm -rf /var/lib/apt/lists/*', `Dockerfile line ${instruction.line}: "${step}" would not be run here`);
  return install.slice(install.indexOf('install') + 'install'.length).split(/\s+/).filter((word) => word && !word.startsWith('-'));
}

function execForm(stage: Stage, keyword: string): string[] {
  const instruction = stage.instructions.find((i) => i.keyword === keyword);
  assert.ok(instruction, `the final stage has no ${keyword}`);
  return JSON.parse(instruction.args);
}

// ---------------------------------------------------------------- build context

/** A .dockerignore pattern as moby's patternmatcher reads it. */
function patternRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i];
    if (char === '*' && pattern[i + 1] === '*') {
      i++;
      if (pattern[i + 1] === '/') {
        i++;
        source += '(?:.*/)?';
      } else source += '.*';
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

const ignorePatterns = readFileSync(projectPath('.dockerignore'), 'utf8')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith('#'))
  .map((line) => {
    const negated = line.startsWith('!');
    const pattern = posix.normalize((negated ? line.slice(1) : line).replace(/^\/+/, '')).replace(/\/$/, '');
    return { negated, regExp: patternRegExp(pattern) };
  });

/** Whether a project-relative path is left out of the build context (it, or a folder above it, matches; the last pattern wins). */
function ignored(path: string): boolean {
  const parts = path.split('/');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let excluded = false;
  for (const { negated, regExp } of ignorePatterns) if (candidates.some((candidate) => regExp.test(candidate))) excluded = !negated;
  return excluded;
}

function inContext(path: string): boolean {
  const relative = posix.normalize(path).replace(/\/$/, '');
  return relative === '.' || (existsSync(projectPath(relative)) && !ignored(relative));
}

/** Copies the project as docker would send it as the build context. */
function copyContext(destination: string, relative = ''): void {
  mkdirSync(join(destination, relative), { recursive: true });
  for (const entry of readdirSync(projectPath(relative || '.'), { withFileTypes: true })) {
    const path = relative ? `${relative}/${entry.name}` : entry.name;
    if (ignored(path)) continue;
    if (entry.isDirectory()) copyContext(destination, path);
    else cpSync(projectPath(path), join(destination, path), { verbatimSymlinks: true });
  }
}

// ---------------------------------------------------------------- tests

const dockerfile = readFileSync(projectPath('Dockerfile'), 'utf8');
const stages = parseStages(dockerfile);
const buildStage = stages.find((stage) => stage.name === 'build')!;
const finalStage = stages.at(-1)!;
const copies = (stage: Stage) => stage.instructions.filter((i) => i.keyword === 'COPY').map(parseCopy);
const runs = (stage: Stage) => stage.instructions.filter((i) => i.keyword === 'RUN');

// What the image's builds need from apt, as scripts/setup.sh installs them here.
const BUILD_PACKAGES = ['clang', 'llvm', 'make', 'g++', 'python3', 'libbpf-dev', 'bpftool', 'libelf-dev', 'libdw-dev', 'zlib1g-dev'];
// In node:20-bookworm-slim already: node itself links them.
const BASE_IMAGE_PACKAGES = ['libc6', 'libstdc++6', 'libgcc-s1'];

describe('Dockerfile', () => {
  test('builds on Node 20 on Debian 12, in a build stage and a runtime stage', () => {
    assert.deepEqual(stages.map((stage) => stage.base), ['node:20-bookworm-slim', 'node:20-bookworm-slim']);
    assert.ok(buildStage, 'a stage named "build"');
    assert.notEqual(finalStage, buildStage);
  });

  test('the build stage installs the toolchain and libraries', () => {
    const installed = runs(buildStage).flatMap((run) => aptPackages(run) ?? []);
    for (const pkg of BUILD_PACKAGES) assert.ok(installed.includes(pkg), `${pkg} is not installed`);
  });

  test('every COPY source is in the build context, and every --from stage exists', () => {
    for (const stage of stages)
      for (const copy of copies(stage)) {
        if (copy.from) {
          assert.ok(stages.some((s) => s.name === copy.from), `no stage "${copy.from}"`);
          continue;
        }
        for (const source of copy.sources) assert.ok(inContext(source), `COPY ${source}: not in the build context (missing or in .dockerignore)`);
      }
  });

  test('the commands it runs name files that are in the build context', () => {
    for (const run of runs(buildStage)) {
      for (const [, dir] of run.args.matchAll(/\bmake\s+-C\s+(\S+)/g)) assert.ok(inContext(`${dir}/Makefile`), `make -C ${dir}: no ${dir}/Makefile`);
      for (const [, dir] of run.args.matchAll(/\bcd\s+(\S+)/g)) assert.ok(inContext(dir) && statSync(projectPath(dir)).isDirectory(), `cd ${dir}`);
      for (const [, file] of run.args.matchAll(/\btsc\s+-p\s+(\S+)/g)) assert.ok(inContext(file), `tsc -p ${file}`);
      if (/\bnode-gyp\b/.test(run.args)) assert.ok(inContext('native/binding.gyp'));
      if (/\bnpm ci\b/.test(run.args)) assert.ok(inContext('package-lock.json'));
    }
    const [launcher] = execForm(finalStage, 'ENTRYPOINT');
    assert.ok(inContext(launcher), `the ENTRYPOINT ${launcher} is not in the build context`);
    const script = /\bdist\/\S+\.js\b/.exec(readFileSync(projectPath(launcher), 'utf8'))?.[0];
    assert.ok(script, `${launcher} runs no dist/*.js`);
    const source = script.replace(/^dist\//, '').replace(/\.js$/, '.ts');
    assert.ok(inContext(source), `${script} is compiled from ${source}, which is not in the build context`);
  });

  test('the image carries a default pipeline where its CMD looks', () => {
    const cmd = execForm(finalStage, 'CMD');
    assert.deepEqual(cmd.slice(0, 2), ['run', '--config']);
    const destinations = copies(finalStage).filter((copy) => !copy.from).map((copy) => copy.destination);
    assert.ok(destinations.includes(cmd[2]), `nothing is copied to ${cmd[2]}`);
  });
});

describe('Dockerfile, built here step by step', () => {
  let scratch: string;
  let buildRoot: string;
  let runtimeRoot: string;
  let runtimeWorkdir = '/';

  /** The host path of an image path. */
  const at = (root: string, imagePath: string) => join(root, imagePath);

  function copyInto(root: string, workdir: string, copy: Copy, contextDir: string): void {
    assert.ok(copy.from === undefined || copy.from === buildStage.name, `COPY --from=${copy.from}: only the build stage is emulated`);
    const sourceRoot = copy.from ? buildRoot : contextDir;
    const destination = posix.resolve(workdir, copy.destination);
    const intoDirectory = copy.destination.endsWith('/') || copy.sources.length > 1;
    for (const source of copy.sources) {
      const from = copy.from ? at(sourceRoot, source) : join(sourceRoot, source);
      assert.ok(existsSync(from), `COPY ${copy.from ? `--from=${copy.from} ` : ''}${source}: no such file`);
      if (lstatSync(from).isDirectory()) cpSync(from, at(root, destination), { recursive: true, verbatimSymlinks: true });
      else {
        const target = intoDirectory ? at(root, posix.join(destination, posix.basename(source))) : at(root, destination);
        mkdirSync(posix.dirname(target), { recursive: true });
        copyFileSync(from, target);
      }
    }
  }

  function checkInstalled(packages: string[]): void {
    for (const pkg of packages) {
      const result = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
      assert.match(result.stdout, /install ok installed/, `${pkg} is not installed on this machine, so the emulation would not match the image`);
    }
  }

  /** Runs a stage's steps into `root`; returns its final WORKDIR. */
  function emulate(stage: Stage, root: string, contextDir: string): string {
    let workdir = '/';
    for (const instruction of stage.instructions) {
      switch (instruction.keyword) {
        case 'WORKDIR':
          workdir = posix.resolve(workdir, instruction.args);
          mkdirSync(at(root, workdir), { recursive: true });
          break;
        case 'COPY':
          copyInto(root, workdir, parseCopy(instruction), contextDir);
          break;
        case 'RUN': {
          const packages = aptPackages(instruction);
          if (packages) {
            checkInstalled(packages);
            break;
          }
          const result = spawnSync('/bin/sh', ['-c', instruction.args], { cwd: at(root, workdir), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
          assert.equal(result.status, 0, `RUN ${instruction.args}\nfailed:\n${result.stdout.slice(-4000)}${result.stderr.slice(-4000)}`);
          break;
        }
        case 'ENTRYPOINT':
        case 'CMD':
        case 'EXPOSE':
          break;
        default:
          assert.fail(`Dockerfile line ${instruction.line}: the emulation does not know ${instruction.keyword}; teach it`);
      }
    }
    return workdir;
  }

  before(() => {
    assert.match(process.version, /^v20\./, 'the image runs Node 20; so must the emulation');
    assert.match(readFileSync('/etc/debian_version', 'utf8'), /^12\./, 'the image is Debian 12; so must the emulation be');
    scratch = mkdtempSync(join(tmpdir(), 'ebpf-collector-image-'));
    const contextDir = join(scratch, 'context');
    buildRoot = join(scratch, 'build-stage');
    runtimeRoot = join(scratch, 'runtime-stage');
    copyContext(contextDir);
    emulate(buildStage, buildRoot, contextDir);
    runtimeWorkdir = emulate(finalStage, runtimeRoot, contextDir);
  });

  after(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test('the runtime stage installs every library the addon links', () => {
    const addon = at(runtimeRoot, posix.join(runtimeWorkdir, 'native/build/Release/ebpf_native.node'));
    const dynamic = spawnSync('readelf', ['-d', addon], { encoding: 'utf8' });
    assert.equal(dynamic.status, 0, dynamic.stderr);
    const needed = [...dynamic.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
    assert.ok(needed.includes('libbpf.so.1'), `unexpected NEEDED list: ${needed.join(', ')}`);
    const cache = spawnSync('ldconfig', ['-p'], { encoding: 'utf8' }).stdout;
    const installed = [...BASE_IMAGE_PACKAGES, ...runs(finalStage).flatMap((run) => aptPackages(run) ?? [])];
    // ldconfig's tag for this machine's libraries, e.g. "libbpf.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libbpf.so.1".
    const archTag = ({ x64: 'x86-64', arm64: 'AArch64' } as Record<string, string>)[process.arch];
    assert.ok(archTag, `no ldconfig tag known for ${process.arch}`);
    for (const library of needed) {
      const escaped = library.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const path = new RegExp(`^\\s*${escaped} \\(.*${archTag}.*\\) => (\\S+)$`, 'm').exec(cache)?.[1];
      assert.ok(path, `${library} is not in the linker cache`);
      const owner = [path, path.replace(/^\/lib\//, '/usr/lib/'), path.replace(/^\/usr\/lib\//, '/lib/')]
        .map((candidate) => spawnSync('dpkg-query', ['-S', candidate], { encoding: 'utf8' }))
        .find((result) => result.status === 0);
      assert.ok(owner, `no package owns ${path}`);
      const pkg = owner.stdout.split(':')[0];
      assert.ok(installed.includes(pkg), `the addon links ${library} (${pkg}), which the runtime stage does not install`);
    }
  });

  test('the image has its default pipeline, and every component it names loads from the image\'s files', () => {
    const cmd = execForm(finalStage, 'CMD');
    assert.ok(existsSync(at(runtimeRoot, cmd[2])), `${cmd[2]} is not in the image`);
    const [launcher] = execForm(finalStage, 'ENTRYPOINT');
    const result = spawnSync(at(runtimeRoot, posix.resolve(runtimeWorkdir, launcher)), ['validate', '--config', at(runtimeRoot, cmd[2])], {
      cwd: at(runtimeRoot, runtimeWorkdir),
      encoding: 'utf8',
    });
    assert.equal(result.status, 0, `validate failed: ${result.stdout}${result.stderr}`);
  });

  test('the image holds no test-only code', () => {
    const dist = at(runtimeRoot, posix.join(runtimeWorkdir, 'dist'));
    const testOnly: string[] = [];
    const visit = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory() ? ['testing', 'testdata'].includes(entry.name) : /\.test\.js(\.map)?$/.test(entry.name)) testOnly.push(path);
        else if (entry.isDirectory()) visit(path);
      }
    };
    visit(dist);
    for (const folder of ['test', 'bench']) if (existsSync(join(dist, folder))) testOnly.push(join(dist, folder));
    assert.deepEqual(testOnly, []);
  });

  test('the collector runs from the runtime stage\'s files alone and counts the execs it sees', async () => {
    const [launcher] = execForm(finalStage, 'ENTRYPOINT');
    const metricsPort = await freePort();
    const statusPort = await freePort();
    const config = join(scratch, 'process-pipeline.yaml');
    writeFileSync(
      config,
      `receivers:
  process:
    collection_interval: 1s
exporters:
  prometheus:
    endpoint: 127.0.0.1:${metricsPort}
service:
  http:
    endpoint: 127.0.0.1:${statusPort}
  pipelines:
    metrics:
      receivers: [process]
      exporters: [prometheus]
`,
    );
    const child = spawn(at(runtimeRoot, posix.resolve(runtimeWorkdir, launcher)), ['run', '--config', config], { cwd: at(runtimeRoot, runtimeWorkdir), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await eventually('the collector to be healthy', 30_000, async () => {
        if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${stderr}`);
        return (await fetch(`http://127.0.0.1:${statusPort}/healthz`)).ok ? true : undefined;
      });
      // A program of our own, so that its comm is ours alone.
      const comm = `img-${process.pid % 100000}`;
      const program = join(scratch, comm);
      copyFileSync('/bin/true', program);
      chmodSync(program, 0o755);
      for (let i = 0; i < 3; i++) assert.equal(spawnSync(program).status, 0);
      const count = await eventually(`ebpf_process_exec_total{comm="${comm}"} to reach 3`, 20_000, async () => {
        const value = sampleValue(await scrape(metricsPort), 'ebpf_process_exec_total', { comm });
        return value >= 3 ? value : undefined;
      });
      assert.equal(count, 3);
    } finally {
      if (child.exitCode === null) child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
  });
});
