/**
 * ebpf-collector [run] [--config FILE] | validate [--config FILE] | --help | --version
 * Exit status: 0 success, 2 configuration error, 1 any other failure.
 */
import { parseArgs } from 'node:util';
import { Collector } from './collector.js';
import { FACTORIES } from './components.js';
import { ConfigError } from './config/errors.js';
import { loadConfigFile, type CollectorConfig } from './config/load.js';
import { createLogger } from './logger.js';
import { projectPath } from './paths.js';
import { VERSION } from './version.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_CONFIG = 2;

const USAGE = `Usage: ebpf-collector [run|validate] [--config FILE]

Commands:
  run        run the pipelines in FILE until SIGINT or SIGTERM (the default)
  validate   check FILE completely and start nothing

Options:
  -c, --config FILE   pipeline configuration (default: the bundled pipeline.yaml)
  -h, --help          show this help
  -v, --version       print the version

Exit status: 0 on success, 2 on a configuration error, 1 on any other failure.
Components: ${['receiver', 'processor', 'exporter']
  .map((kind) => `${kind}s: ${FACTORIES.filter((f) => f.kind === kind).map((f) => f.type).join(', ') || '(none)'}`)
  .join('; ')}.`;

async function main(argv: string[]): Promise<number> {
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
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`);
    return EXIT_CONFIG;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  if (values.version) {
    process.stdout.write(`ebpf-collector ${VERSION}\n`);
    return EXIT_OK;
  }
  const command = positionals[0] ?? 'run';
  if (!['run', 'validate'].includes(command) || positionals.length > 1) {
    process.stderr.write(`unknown command "${positionals.join(' ')}"\n\n${USAGE}\n`);
    return EXIT_CONFIG;
  }
  const configPath = values.config ?? projectPath('pipeline.yaml');

  let config;
  try {
    config = loadConfigFile(configPath, FACTORIES);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`invalid configuration in ${configPath}:\n${error.problems.map((p) => `  ${p.path ? `${p.path}: ` : ''}${p.message}`).join('\n')}\n`);
    return EXIT_CONFIG;
  }
  if (command === 'validate') {
    process.stdout.write(`${configPath}: valid (${config.pipelines.map((p) => p.id).join(', ')})\n`);
    return EXIT_OK;
  }
  return run(config, configPath);
}

async function run(config: CollectorConfig, configPath: string): Promise<number> {
  const logger = createLogger(config.service.logLevel);
  // After startup the collector must never crash: report and carry on.
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'));
  process.on('uncaughtException', (error) => logger.error({ err: error }, 'uncaught exception'));

  const collector = new Collector(config, logger);
  logger.info({ config: configPath, version: VERSION }, 'starting');
  try {
    await collector.start();
  } catch (error) {
    logger.error({ err: error }, 'start failed');
    await collector.shutdown();
    return EXIT_FAILURE;
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  logger.info({ signal }, 'shutting down');
  await collector.shutdown();
  logger.info('stopped');
  return EXIT_OK;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`ebpf-collector: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(EXIT_FAILURE);
  },
);
