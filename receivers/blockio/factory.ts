import type { ReceiverFactory } from '../../collector/component.js';
import { blockioConfigSchema, type BlockioConfig } from './config.js';
import { BlockioReceiver } from './receiver.js';

export const blockioReceiverFactory: ReceiverFactory<BlockioConfig> = {
  kind: 'receiver',
  type: 'blockio',
  configSchema: blockioConfigSchema,
  signals: ['metrics'],
  create: (settings, config, next) => new BlockioReceiver(settings, config, next.metrics!),
};
