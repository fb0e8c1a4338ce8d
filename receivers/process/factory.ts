import type { ReceiverFactory } from '../../collector/component.js';
import { processConfigSchema, type ProcessConfig } from './config.js';
import { ProcessReceiver } from './receiver.js';

export const processReceiverFactory: ReceiverFactory<ProcessConfig> = {
  kind: 'receiver',
  type: 'process',
  configSchema: processConfigSchema,
  signals: ['metrics'],
  create: (settings, config, next) => new ProcessReceiver(settings, config, next.metrics!),
};
