import type { ReceiverFactory } from '../../collector/component.js';
import { tlsConfigSchema, type TlsConfig } from './config.js';
import { TlsReceiver } from './receiver.js';

export const tlsReceiverFactory: ReceiverFactory<TlsConfig> = {
  kind: 'receiver',
  type: 'tls',
  configSchema: tlsConfigSchema,
  signals: ['metrics'],
  create: (settings, config, next) => new TlsReceiver(settings, config, next.metrics!),
};
