import type { ReceiverFactory } from '../../collector/component.js';
import { tcpConfigSchema, type TcpConfig } from './config.js';
import { TcpReceiver } from './receiver.js';

export const tcpReceiverFactory: ReceiverFactory<TcpConfig> = {
  kind: 'receiver',
  type: 'tcp',
  configSchema: tcpConfigSchema,
  signals: ['metrics'],
  create: (settings, config, next) => new TcpReceiver(settings, config, next.metrics!),
};
