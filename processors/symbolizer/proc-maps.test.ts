/** /proc/PID/maps of real processes: parsed once while unchanged, parsed again when the process maps something new. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ProcessMappingsReader } from './proc-maps.js';

// Maps /bin/true executable when told to, changing its maps; prints "ready" and "mapped".
const MAPPER = `
import mmap, sys
print("ready", flush=True)
sys.stdin.readline()
f = open("/bin/true", "rb")
m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ | mmap.PROT_EXEC)
print("mapped", flush=True)
sys.stdin.readline()
`;

test('unchanged maps are parsed once; a new mapping and an exit are seen at the next read', async () => {
  const child = spawn('python3', ['-c', MAPPER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = child.stdout.setEncoding('utf8');
  const nextLine = async () => String((await once(lines, 'data'))[0]).trim();
  const reader = new ProcessMappingsReader();
  try {
    assert.equal(await nextLine(), 'ready');
    const first = await reader.read(child.pid!);
    assert.ok(first, 'a running process has mappings');
    assert.equal(await reader.read(child.pid!), first, 'the same text gives the same parsed mappings');
    assert.equal(first.find(0x1000), undefined);

    child.stdin.write('\n');
    assert.equal(await nextLine(), 'mapped');
    const second = await reader.read(child.pid!);
    assert.ok(second && second !== first, 'new text is parsed again');
    const trueMapping = readFileSync(`/proc/${child.pid}/maps`, 'utf8').split('\n').find((l) => l.endsWith('/usr/bin/true') || l.endsWith('/bin/true'));
    assert.ok(trueMapping, '/bin/true is mapped');
    const start = Number.parseInt(trueMapping.split('-')[0], 16);
    assert.equal(second.find(start)?.path.endsWith('/true'), true, 'the new mapping is found');
  } finally {
    child.stdin.end();
    await once(child, 'exit');
  }
  assert.equal(await reader.read(child.pid!), undefined, 'an exited process has none');
});
