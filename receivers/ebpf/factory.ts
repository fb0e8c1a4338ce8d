import type { ReceiverFactory } from '../../collector/component.js';
import { ebpfConfigSchema, type EbpfConfig } from './config.js';
import { EbpfReceiver } from './receiver.js';

export const ebpfReceiverFactory: ReceiverFactory<EbpfConfig> = {
  kind: 'receiver',
  type: 'ebpf',
  configSchema: ebpfConfigSchema,
  signals: ['metrics'],
  create: (settings, config, next) => new EbpfReceiver(settings, config, next.metrics!),
};
