import { hideBin } from 'yargs/helpers';
import { runEppkit } from './eppkit-cli.ts';
import { printError } from './output.ts';
import { env } from '../core/env.ts';

try {
  // The EPPKIT_* environment is an input like the others: checked once, up front, every bad
  // variable named (core/env.ts).
  env();
  await runEppkit(hideBin(process.argv));
} catch (e) {
  process.exitCode = printError(e);
}
