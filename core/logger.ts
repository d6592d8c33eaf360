// Structured JSON logs (pino) for servers; the CLI's human output goes through chalk instead.
import { pino, type Logger, type LoggerOptions } from 'pino';
import { env } from './env.ts';
import { stderrLogDestination } from './fd-log-destination.ts';

export type { Logger };

export function createLogger(name: string, opts: LoggerOptions = {}): Logger {
  const level = env().EPPKIT_LOG_LEVEL ?? opts.level ?? 'info';
  // Batched writes from the main thread: info lines within 100 ms, warnings at once (fd-log-destination.ts).
  return pino({ name, level, base: { name }, ...opts }, stderrLogDestination());
}

/** A logger that drops everything, for tests and embedded use. */
export const silentLogger: Logger = pino({ level: 'silent' });
