/**
 * Profile batches → folded stacks, the text flamegraph.pl, speedscope and
 * inferno read: one line per distinct stack, `comm;root;…;leaf count`, root
 * first. The first frame is the process name (comm), as stackcollapse-perf.pl
 * and bpftrace write it, so a flame graph splits by process at its base. A
 * frame is its function name, or for a frame the symbolizer could not name
 * `unsymbolizedName(frame)` (`libfoo.so+0x1234`). Lines are sorted, counts are
 * samples summed over every batch.
 */
import { unsymbolizedName, type Frame, type ProfileBatch } from '../../collector/data/profiles.js';

export function encodeFolded(batches: readonly ProfileBatch[]): string {
  const counts = new Map<string, number>();
  for (const batch of batches)
    for (const sample of batch.samples) {
      const frames = [sample.comm || '[unknown]', ...sample.frames.map(frameName).reverse()].map(foldedSafe);
      const stack = frames.join(';');
      counts.set(stack, (counts.get(stack) ?? 0) + sample.count);
    }
  return [...counts.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([stack, count]) => `${stack} ${count}\n`)
    .join('');
}

function frameName(frame: Frame): string {
  return frame.functionName ?? unsymbolizedName(frame);
}

/** `;` separates frames and a line is one stack, so neither may appear inside a name. */
function foldedSafe(name: string): string {
  return name.replace(/;/g, ':').replace(/[\r\n]/g, ' ');
}
