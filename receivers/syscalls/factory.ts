import type { ReceiverFactory } from '../../collector/component.js';
import { syscallsConfigSchema, type SyscallsConfig } from './config.js';
import { SyscallsReceiver } from './receiver.js';

export const syscallsReceiverFactory: ReceiverFactory<SyscallsConfig> = {
  kind: 'receiver',
  type: 'syscalls',
  configSchema: syscallsConfigSchema,
  signals: ['metrics'],
  create: (settings, config, next) => new SyscallsReceiver(settings, config, next.metrics!),
};
