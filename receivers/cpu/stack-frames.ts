/**
 * The frames of one window's stacks, one shared Frame object per distinct
 * frame: a kernel address, or an address in one process, is one object
 * however many stacks hold it. A window of whole-system samples holds ~20×
 * more frames than distinct ones, and the symbolizer and the exporters then
 * work once per distinct frame.
 *
 * A stack's leaf stays apart from the same address seen as a caller: a
 * caller's address is a return address, which the symbolizer looks up one
 * byte earlier, so the two can name different functions.
 */
import type { Frame } from '../../collector/data/profiles.js';
import type { MapEntries } from '../../native/index.js';
import { uint32Words } from '../common/polling.js';
import { MAX_STACK_DEPTH } from './layout.js';

const STACK_WORDS = MAX_STACK_DEPTH * 2;

/** The decoded stacks of one address space (the kernel, or one process) and its frames by address key. */
interface AddressSpace {
  stacks: Map<number, Frame[]>;
  /** [the leaves', the callers']. */
  frames: [Map<number, Frame>, Map<number, Frame>];
}

export class StackFrames {
  /** Where each stack id's addresses are in the drained values. */
  private readonly slotById = new Map<number, number>();
  private readonly kernelSpace: AddressSpace = newAddressSpace();
  /** By pid: a user stack id means the same addresses in every process, but not the same code. */
  private readonly processSpaces = new Map<number, AddressSpace>();
  private readonly words: Uint32Array;

  /** `stacks`: a drained stack-trace map, u32 stack ids to MAX_STACK_DEPTH u64 addresses, leaf first, zero-ended. */
  constructor(stacks: MapEntries) {
    const ids = uint32Words(stacks.keys);
    for (let i = 0; i < stacks.count; i++) this.slotById.set(ids[i], i);
    this.words = uint32Words(stacks.values);
  }

  /** The kernel stack's frames, leaf first; undefined when the map has no such stack. Callers must not change the array. */
  kernel(stackId: number): readonly Frame[] | undefined {
    return this.stack(stackId, 'kernel', this.kernelSpace);
  }

  /** The user stack's frames in process `pid`, leaf first; undefined when the map has no such stack. */
  user(pid: number, stackId: number): readonly Frame[] | undefined {
    let space = this.processSpaces.get(pid);
    if (!space) this.processSpaces.set(pid, (space = newAddressSpace()));
    return this.stack(stackId, 'user', space);
  }

  private stack(stackId: number, kind: Frame['kind'], space: AddressSpace): Frame[] | undefined {
    let frames = space.stacks.get(stackId);
    if (!frames) {
      frames = this.decode(stackId, kind, space);
      if (frames) space.stacks.set(stackId, frames);
    }
    return frames;
  }

  private decode(stackId: number, kind: Frame['kind'], space: AddressSpace): Frame[] | undefined {
    const slot = this.slotById.get(stackId);
    if (slot === undefined) return undefined;
    const words = this.words;
    const base = slot * STACK_WORDS;
    const frames: Frame[] = [];
    for (let depth = 0; depth < MAX_STACK_DEPTH; depth++) {
      const low = words[base + depth * 2];
      const high = words[base + depth * 2 + 1];
      if (low === 0 && high === 0) break;
      const key = addressKey(low, high);
      const known = space.frames[depth === 0 ? 0 : 1];
      let frame = Number.isNaN(key) ? undefined : known.get(key);
      if (!frame) {
        frame = { kind, address: (BigInt(high) << 32n) | BigInt(low) };
        if (!Number.isNaN(key)) known.set(key, frame);
      }
      frames.push(frame);
    }
    return frames;
  }
}

function newAddressSpace(): AddressSpace {
  return { stacks: new Map(), frames: [new Map(), new Map()] };
}

/**
 * A 64-bit address as a double without allocating a bigint: exact below 2^53
 * (all of user space) and, folded to negatives, in the kernel's top half; NaN
 * (not kept) for anything else.
 */
function addressKey(low: number, high: number): number {
  if (high < 0x20_0000) return high * 2 ** 32 + low;
  if (high >= 0xffe0_0000) return -((high - 0xffe0_0000) * 2 ** 32 + low) - 1;
  return NaN;
}
