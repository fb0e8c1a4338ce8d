import type { Component, ConnectorFactory, Consumer } from '../../collector/component.js';
import type { Signal } from '../../collector/data/signals.js';
import { profileMetricsConfigSchema, type ProfileMetricsConfig } from './config.js';
import { ProfileMetricsConnector } from './connector.js';

export const profileMetricsConnectorFactory: ConnectorFactory<ProfileMetricsConfig> = {
  kind: 'connector',
  type: 'profilemetrics',
  configSchema: profileMetricsConfigSchema,
  routes: [{ from: 'profiles', to: 'metrics' }],
  // The only route is profiles → metrics, so `next` takes metrics and the connector takes profiles.
  create: (settings, config, _from, _to, next) => new ProfileMetricsConnector(settings, config, next as Consumer<'metrics'>) as Component & Consumer<Signal>,
};
