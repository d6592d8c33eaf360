import { hideBin } from 'yargs/helpers';
import { runEppkit } from './eppkit-cli.ts';
import { printError } from './output.ts';

try {
  await runEppkit(hideBin(process.argv));
} catch (e) {
  process.exitCode = printError(e);
}
