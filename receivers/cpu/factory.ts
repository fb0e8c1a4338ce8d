import type { ReceiverFactory } from '../../collector/component.js';
import { cpuConfigSchema, type CpuConfig } from './config.js';
import { CpuReceiver } from './receiver.js';

export const cpuReceiverFactory: ReceiverFactory<CpuConfig> = {
  kind: 'receiver',
  type: 'cpu',
  configSchema: cpuConfigSchema,
  signals: ['profiles'],
  create: (settings, config, next) => new CpuReceiver(settings, config, next.profiles!),
};
