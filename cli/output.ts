// Human output of the CLI. chalk honours NO_COLOR and FORCE_COLOR itself; this module only
// decides where text goes and how a user's mistake is printed (never a stack trace).
import chalk from 'chalk';
import { isEppkitError } from '../core/errors.ts';

export { chalk };

export function printError(e: unknown): number {
  if (isEppkitError(e)) {
    process.stderr.write(`${chalk.red('error')} ${e.format()}\n`);
    return e.exitCode;
  }
  // A bug in eppkit, not the user's mistake: the stack is what a bug report needs.
  process.stderr.write(`${chalk.red('internal error')} ${(e as Error)?.stack ?? String(e)}\n`);
  return 70;
}
