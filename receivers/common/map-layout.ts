/** Checking at start that a loaded object's maps have the layouts a receiver reads. */
import type { BpfObject } from '../../native/index.js';

/** Fails, saying what differs, unless `map` has `keySize`-byte keys and `valueSize`-byte values. */
export function expectMapLayout(object: BpfObject, map: string, keySize: number, valueSize: number): void {
  const info = object.mapInfo(map);
  if (info.keySize !== keySize || info.valueSize !== valueSize)
    throw new Error(`map "${map}" has ${info.keySize}-byte keys and ${info.valueSize}-byte values, expected ${keySize} and ${valueSize}: rebuild with \`make -C bpf\``);
}
