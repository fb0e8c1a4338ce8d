import type { Component, Consumer, CreateSettings, ProcessorFactory } from '../../collector/component.js';
import type { Signal } from '../../collector/data/signals.js';
import { symbolizerConfigSchema, type SymbolizerConfig } from './config.js';
import { SymbolizerProcessor } from './processor.js';

export const symbolizerProcessorFactory: ProcessorFactory<SymbolizerConfig> = {
  kind: 'processor',
  type: 'symbolizer',
  configSchema: symbolizerConfigSchema,
  signals: ['profiles'],
  create: <S extends Signal>(settings: CreateSettings, config: SymbolizerConfig, signal: S, next: Consumer<S>) => {
    // The graph only asks for the signals listed above; the check makes the narrowing sound.
    if (signal !== 'profiles') throw new Error(`the symbolizer processor handles profiles, not ${signal}`);
    return new SymbolizerProcessor(settings, config, next as Consumer<'profiles'>) as unknown as Component & Consumer<S>;
  },
};
