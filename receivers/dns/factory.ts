import type { ReceiverFactory } from '../../collector/component.js';
import { dnsConfigSchema, type DnsConfig } from './config.js';
import { DnsReceiver } from './receiver.js';

export const dnsReceiverFactory: ReceiverFactory<DnsConfig> = {
  kind: 'receiver',
  type: 'dns',
  configSchema: dnsConfigSchema,
  signals: ['metrics'],
  create: (settings, config, next) => new DnsReceiver(settings, config, next.metrics!),
};
