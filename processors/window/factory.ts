import type { Component, Consumer, CreateSettings, ProcessorFactory } from '../../collector/component.js';
import type { Signal } from '../../collector/data/signals.js';
import { windowConfigSchema, type WindowConfig } from './config.js';
import { WindowProcessor } from './processor.js';

export const windowProcessorFactory: ProcessorFactory<WindowConfig> = {
  kind: 'processor',
  type: 'window',
  configSchema: windowConfigSchema,
  signals: ['metrics'],
  // Only the metrics signal is declared, so the pipeline never asks for another.
  create: <S extends Signal>(settings: CreateSettings, config: WindowConfig, _signal: S, next: Consumer<S>) =>
    new WindowProcessor(settings, config, next as Consumer<'metrics'>) as unknown as Component & Consumer<S>,
};
