import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root: the nearest folder above this module with our package.json (works from source and from dist/). */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'ebpf-collector') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the ebpf-collector project root above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

export const PROJECT_ROOT = findRoot();

export function projectPath(...parts: string[]): string {
  return join(PROJECT_ROOT, ...parts);
}

/** Where `make -C bpf` puts compiled BPF objects. */
export function bpfObjectPath(name: string): string {
  return projectPath('build', 'bpf', `${name}.bpf.o`);
}
