import type { Component, Consumer, CreateSettings, ProcessorFactory } from '../../collector/component.js';
import type { Signal } from '../../collector/data/signals.js';
import { labelsConfigSchema, type LabelsConfig } from './config.js';
import { LabelsProcessor } from './processor.js';

export const labelsProcessorFactory: ProcessorFactory<LabelsConfig> = {
  kind: 'processor',
  type: 'labels',
  configSchema: labelsConfigSchema,
  signals: ['metrics'],
  // Only the metrics signal is declared, so the pipeline never asks for another.
  create: <S extends Signal>(settings: CreateSettings, config: LabelsConfig, _signal: S, next: Consumer<S>) =>
    new LabelsProcessor(settings, config, next as Consumer<'metrics'>) as unknown as Component & Consumer<S>,
};
