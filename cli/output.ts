// Human output of the CLI: the one chalk instance every command prints through, and how a
// user's mistake is printed (never a stack trace). chalk 5 honours FORCE_COLOR and --no-color
// but not NO_COLOR (no-color.org: present and not empty = no colour), so that is decided here.
import { Chalk, supportsColor } from 'chalk';
import { isEppkitError } from '../core/errors.ts';

/** No colour when NO_COLOR is set and not empty, or --no-color / --color=false is on the command line. */
export function colorLevel(env: NodeJS.ProcessEnv = process.env, argv: readonly string[] = process.argv): 0 | 1 | 2 | 3 {
  if (argv.includes('--no-color') || argv.includes('--color=false')) return 0;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  return supportsColor ? supportsColor.level : 0;
}

export const chalk = new Chalk({ level: colorLevel() });

export function printError(e: unknown): number {
  if (isEppkitError(e)) {
    process.stderr.write(`${chalk.red('error')} ${e.format()}\n`);
    return e.exitCode;
  }
  // A bug in eppkit, not the user's mistake: the stack is what a bug report needs.
  process.stderr.write(`${chalk.red('internal error')} ${(e as Error)?.stack ?? String(e)}\n`);
  return 70;
}
