import { pino } from 'pino';

export type Logger = pino.Logger;
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** JSON lines on stderr, so stdout stays free for command output. */
export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { service: 'ebpf-collector' } }, pino.destination({ fd: 2, sync: true }));
}
