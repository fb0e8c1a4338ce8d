/** Which labels of a metric survive: its filter entry if it has one, else the default drops. */
import type { Attributes } from '../../collector/data/metrics.js';
import type { LabelFilter, LabelsConfig } from './config.js';

export type LabelSelector = (attributes: Attributes) => Attributes;

export class LabelRules {
  private readonly byMetric = new Map<string, LabelSelector>();
  private readonly fallback: LabelSelector;

  constructor(config: Pick<LabelsConfig, 'filters' | 'default_drop_labels'>) {
    for (const filter of config.filters) this.byMetric.set(filter.metric, selectorFor(filter));
    this.fallback = selectorFor({ drop_labels: config.default_drop_labels });
  }

  forMetric(name: string): LabelSelector {
    return this.byMetric.get(name) ?? this.fallback;
  }
}

function selectorFor({ keep_labels, drop_labels }: Omit<LabelFilter, 'metric'>): LabelSelector {
  const keep = keep_labels && new Set(keep_labels);
  const drop = new Set(drop_labels);
  return (attributes) => {
    const selected: Attributes = {};
    for (const [name, value] of Object.entries(attributes)) if ((!keep || keep.has(name)) && !drop.has(name)) selected[name] = value;
    return selected;
  };
}
