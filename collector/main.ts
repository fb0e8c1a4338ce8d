/**
 * The CLI's commands, for the entrypoint (cli.ts) and for test entrypoints
 * that add components of their own.
 * Exit status: 0 success, 2 configuration error, 1 any other failure.
 */
import { parseArgs } from 'node:util';
import { Collector } from './collector.js';
import type { Factory } from './component.js';
import { ConfigError } from './config/errors.js';
import { loadConfigFile, type CollectorConfig } from './config/load.js';
import { createLogger, type Logger } from './logger.js';
import { exitImmediately } from '../native/index.js';
import { projectPath } from './paths.js';
import { VERSION } from './version.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_CONFIG = 2;

function usage(factories: Factory[]): string {
  return `Usage: ebpf-collector [run|validate] [--config FILE]

Commands:
  run        run the pipelines in FILE until SIGINT or SIGTERM (the default)
  validate   check FILE completely and start nothing

Options:
  -c, --config FILE   pipeline configuration (default: the bundled pipeline.yaml)
  -h, --help          show this help
  -v, --version       print the version

Exit status: 0 on success, 2 on a configuration error, 1 on any other failure
(a shutdown past service::shutdown_timeout, an error nobody caught).
Components: ${['receiver', 'processor', 'exporter']
    .map((kind) => `${kind}s: ${factories.filter((f) => f.kind === kind).map((f) => f.type).join(', ') || '(none)'}`)
    .join('; ')}.`;
}

/** Runs the command in `argv` with the components of `factories`; resolves to the exit status. */
export async function main(argv: string[], factories: Factory[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${usage(factories)}\n`);
    return EXIT_CONFIG;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${usage(factories)}\n`);
    return EXIT_OK;
  }
  if (values.version) {
    process.stdout.write(`ebpf-collector ${VERSION}\n`);
    return EXIT_OK;
  }
  const command = positionals[0] ?? 'run';
  if (!['run', 'validate'].includes(command) || positionals.length > 1) {
    process.stderr.write(`unknown command "${positionals.join(' ')}"\n\n${usage(factories)}\n`);
    return EXIT_CONFIG;
  }
  const configPath = values.config ?? projectPath('pipeline.yaml');

  let config;
  try {
    config = loadConfigFile(configPath, factories);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return reportConfigError(configPath, error);
  }
  if (command === 'validate') {
    process.stdout.write(`${configPath}: valid (${config.pipelines.map((p) => p.id).join(', ')})\n`);
    return EXIT_OK;
  }
  return run(config, configPath);
}

function reportConfigError(configPath: string, error: ConfigError): number {
  process.stderr.write(`invalid configuration in ${configPath}:\n${error.problems.map((p) => `  ${p.path ? `${p.path}: ` : ''}${p.message}`).join('\n')}\n`);
  return EXIT_CONFIG;
}

/** Why the collector stops: a signal, or an error nobody caught. */
interface StopReason {
  reason: string;
  fatal: boolean;
}

/**
 * An error nobody caught leaves the collector in a state nobody planned for:
 * it is logged as fatal, everything is shut down (BPF links released) and the
 * exit status is 1, for the supervisor to start a fresh collector. Never swallowed.
 */
function stopRequests(logger: Logger): Promise<StopReason> {
  return new Promise((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve({ reason: signal, fatal: false }));
    process.on('uncaughtException', (error) => {
      logger.fatal({ err: error }, 'uncaught exception: shutting down');
      resolve({ reason: 'uncaught exception', fatal: true });
    });
    process.on('unhandledRejection', (reason) => {
      logger.fatal({ err: reason }, 'unhandled promise rejection: shutting down');
      resolve({ reason: 'unhandled promise rejection', fatal: true });
    });
  });
}

async function run(config: CollectorConfig, configPath: string): Promise<number> {
  const logger = createLogger(config.service.logLevel);
  const stop = stopRequests(logger);
  let collector: Collector;
  try {
    // Files the settings name (TLS keys, token files) are read here: one that cannot be is a configuration error too.
    collector = new Collector(config, logger);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return reportConfigError(configPath, error);
  }
  logger.info({ config: configPath, version: VERSION }, 'starting');
  const startFailure = collector.start().then(
    () => undefined,
    (error: Error) => error,
  );
  const first = await Promise.race([startFailure, stop]);
  let status = EXIT_OK;
  if (first instanceof Error) {
    logger.error({ err: first }, 'start failed');
    status = EXIT_FAILURE;
  } else {
    const { reason, fatal } = first ?? (await stop);
    logger.info({ reason }, 'shutting down');
    if (fatal) status = EXIT_FAILURE;
  }
  const notStopped = await collector.shutdown();
  if (notStopped.length > 0) {
    // The process's exit closes every fd it holds, and BPF links and programs are fds: the kernel detaches them.
    logger.error(
      { notStopped, shutdownTimeoutMs: config.service.shutdownTimeoutMs },
      `shutdown did not finish within service::shutdown_timeout; still stopping: ${notStopped.join(', ')}; exiting anyway`,
    );
    // Not process.exit(): it waits for Node's thread pool, and a stuck step may hold a thread in a system call for ever.
    exitImmediately(EXIT_FAILURE);
  }
  logger.info('stopped');
  return status;
}

/** Runs main() as this process, exiting with its status. */
export function runAsProcess(factories: Factory[]): void {
  main(process.argv.slice(2), factories).then(
    (code) => process.exit(code),
    (error) => {
      process.stderr.write(`ebpf-collector: ${(error as Error).stack ?? String(error)}\n`);
      process.exit(EXIT_FAILURE);
    },
  );
}
