/** Every component type the collector knows, by kind. Add a factory here to make a type usable in pipeline.yaml. */
import type { Factory } from './component.js';
import { cpuReceiverFactory } from '../receivers/cpu/factory.js';
import { ebpfReceiverFactory } from '../receivers/ebpf/factory.js';
import { processReceiverFactory } from '../receivers/process/factory.js';
import { syscallsReceiverFactory } from '../receivers/syscalls/factory.js';
import { tcpReceiverFactory } from '../receivers/tcp/factory.js';
import { dnsReceiverFactory } from '../receivers/dns/factory.js';
import { tlsReceiverFactory } from '../receivers/tls/factory.js';
import { blockioReceiverFactory } from '../receivers/blockio/factory.js';
import { fileioReceiverFactory } from '../receivers/fileio/factory.js';
import { otlpGrpcExporterFactory } from '../exporters/otlp/factory.js';
import { otlpHttpExporterFactory } from '../exporters/otlphttp/factory.js';
import { pprofExporterFactory } from '../exporters/pprof/factory.js';
import { prometheusExporterFactory } from '../exporters/prometheus/factory.js';
import { labelsProcessorFactory } from '../processors/labels/factory.js';
import { symbolizerProcessorFactory } from '../processors/symbolizer/factory.js';
import { windowProcessorFactory } from '../processors/window/factory.js';
import { profileMetricsConnectorFactory } from '../connectors/profilemetrics/factory.js';

export const FACTORIES: Factory[] = [
  processReceiverFactory,
  cpuReceiverFactory,
  syscallsReceiverFactory,
  tcpReceiverFactory,
  dnsReceiverFactory,
  tlsReceiverFactory,
  blockioReceiverFactory,
  fileioReceiverFactory,
  ebpfReceiverFactory,
  symbolizerProcessorFactory,
  labelsProcessorFactory,
  windowProcessorFactory,
  prometheusExporterFactory,
  pprofExporterFactory,
  otlpHttpExporterFactory,
  otlpGrpcExporterFactory,
  profileMetricsConnectorFactory,
];
