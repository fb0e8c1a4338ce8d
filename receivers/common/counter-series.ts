/** Counters by label set: kernel keys (and CPUs) that end up with the same labels add up. */
import { attributesKey, type Attributes, type NumberPoint } from '../../collector/data/metrics.js';

export class CounterSeries {
  private readonly byLabels = new Map<string, NumberPoint>();

  add(attributes: Attributes, value: number): void {
    const key = attributesKey(attributes);
    const point = this.byLabels.get(key);
    if (point) point.value += value;
    else this.byLabels.set(key, { attributes, value });
  }

  points(): NumberPoint[] {
    return [...this.byLabels.values()];
  }
}
