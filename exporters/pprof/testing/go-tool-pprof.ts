/**
 * Test helper: reads profiles back with the reference reader, Debian's
 * `go tool pprof`, in a private HOME and GOCACHE so that it neither depends on
 * nor touches the user's (and finds no local binaries to symbolize with).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const home = mkdtempSync(join(tmpdir(), 'pprof-home-'));

export interface PprofOutput {
  stdout: string;
  stderr: string;
}

/** `go tool pprof ARGS SOURCE`, SOURCE a file or a URL to fetch the profile from. */
export async function goToolPprof(args: string[], source: string): Promise<PprofOutput> {
  const { stdout, stderr } = await execFileAsync('/usr/bin/go', ['tool', 'pprof', ...args, source], {
    timeout: 120_000,
    env: { PATH: process.env.PATH, HOME: home, GOCACHE: join(home, 'gocache'), GOFLAGS: '', PPROF_TMPDIR: home },
  });
  return { stdout, stderr };
}

export interface RawSample {
  values: number[];
  locationIds: number[];
  labels: Record<string, string>;
}

export interface RawLocation {
  address: bigint;
  mappingId: number;
  functionName: string;
  fileName: string;
  line: number;
}

export interface RawMapping {
  start: bigint;
  limit: bigint;
  offset: bigint;
  file: string;
  buildId: string;
  flags: string;
}

export interface RawProfile {
  periodType: string;
  period: number;
  time: string;
  duration: string;
  sampleTypes: string;
  samples: RawSample[];
  locations: Map<number, RawLocation>;
  mappings: Map<number, RawMapping>;
}

/** Parses `go tool pprof -raw` output (profile.String()). */
export function parseRaw(text: string): RawProfile {
  const lines = text.split('\n');
  const header = (name: string) => lines.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2) ?? '';
  const section = (name: string) => lines.indexOf(name);
  const profile: RawProfile = {
    periodType: header('PeriodType'),
    period: Number(header('Period')),
    time: header('Time'),
    duration: header('Duration'),
    sampleTypes: lines[section('Samples:') + 1].trim(),
    samples: [],
    locations: new Map(),
    mappings: new Map(),
  };
  for (const line of lines.slice(section('Samples:') + 2, section('Locations'))) {
    const sample = /^\s+(\d+(?:\s+\d+)*): ([\d ]*)$/.exec(line);
    if (sample) {
      profile.samples.push({ values: sample[1].trim().split(/\s+/).map(Number), locationIds: sample[2].trim().split(' ').filter(Boolean).map(Number), labels: {} });
      continue;
    }
    for (const [, key, value] of line.matchAll(/(\w+):\[([^\]]*)\]/g)) profile.samples.at(-1)!.labels[key] = value;
  }
  for (const line of lines.slice(section('Locations') + 1, section('Mappings'))) {
    const location = /^\s*(\d+): (0x[0-9a-f]+) M=(\d+) (.*) (\S*):(\d+) s=\d+$/.exec(line);
    if (location)
      profile.locations.set(Number(location[1]), {
        address: BigInt(location[2]),
        mappingId: Number(location[3]),
        functionName: location[4],
        fileName: location[5],
        line: Number(location[6]),
      });
  }
  for (const line of lines.slice(section('Mappings') + 1)) {
    const mapping = /^(\d+): (0x[0-9a-f]+)\/(0x[0-9a-f]+)\/(0x[0-9a-f]+) (\S*) (\S*) ?(.*)$/.exec(line);
    if (mapping)
      profile.mappings.set(Number(mapping[1]), {
        start: BigInt(mapping[2]),
        limit: BigInt(mapping[3]),
        offset: BigInt(mapping[4]),
        file: mapping[5],
        buildId: mapping[6],
        flags: mapping[7].trim(),
      });
  }
  return profile;
}

/** Flat and cumulative values by function name from `go tool pprof -top` output. */
export function parseTop(text: string): Map<string, { flat: number; cum: number }> {
  const rows = new Map<string, { flat: number; cum: number }>();
  for (const line of text.split('\n')) {
    const row = /^\s*(\d+)\s+[\d.]+%\s+[\d.]+%\s+(\d+)\s+[\d.]+%\s+(.+)$/.exec(line);
    if (row) rows.set(row[3], { flat: Number(row[1]), cum: Number(row[2]) });
  }
  return rows;
}
