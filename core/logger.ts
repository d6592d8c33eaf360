// Structured JSON logs (pino) for servers; the CLI's human output goes through chalk instead.
import { pino, type Logger, type LoggerOptions } from 'pino';
import { env } from './env.ts';

export type { Logger };

export function createLogger(name: string, opts: LoggerOptions = {}): Logger {
  const level = env().EPPKIT_LOG_LEVEL ?? opts.level ?? 'info';
  return pino({ name, level, base: { name }, ...opts }, pino.destination({ fd: 2, sync: false }));
}

/** A logger that drops everything, for tests and embedded use. */
export const silentLogger: Logger = pino({ level: 'silent' });
