/**
 * Exact reads of counter maps while the kernel keeps counting (bpf/counter_bank.h): the programs are
 * switched to the other bank, and the old one is read and reset once none can still add to it.
 */
import type { CreateSettings } from '../../collector/component.js';
import type { BpfObject, MapEntries } from '../../native/index.js';

/** A counter bank that no program adds to any more: its maps can be drained exactly. */
export class RetiredBank {
  constructor(
    private readonly object: BpfObject,
    readonly bank: number,
  ) {}

  /** The map's name in this bank. */
  map(map: string): string {
    return `${map}_${this.bank}`;
  }

  /** Every entry of this bank of `map`, removed. */
  drain(map: string, expectedKeys?: Buffer): MapEntries {
    return this.object.drain(this.map(map), expectedKeys);
  }

  /** drain(), reporting how full the map was under its name without the bank. */
  drainReportingFill(telemetry: CreateSettings['telemetry'], map: string): MapEntries {
    const entries = this.drain(map);
    telemetry.mapFill(map, entries.count, this.object.mapInfo(this.map(map)).maxEntries);
    return entries;
  }
}

/** Switches the programs of counter bank `group` to the other bank and returns the one they left, once they have left it. */
export async function retireBank(object: BpfObject, group = 0): Promise<RetiredBank> {
  return new RetiredBank(object, await object.swapBanks(group));
}
