import type { ReceiverFactory } from '../../collector/component.js';
import { fileioConfigSchema, type FileioConfig } from './config.js';
import { FileioReceiver } from './receiver.js';

export const fileioReceiverFactory: ReceiverFactory<FileioConfig> = {
  kind: 'receiver',
  type: 'fileio',
  configSchema: fileioConfigSchema,
  signals: ['metrics'],
  create: (settings, config, next) => new FileioReceiver(settings, config, next.metrics!),
};
