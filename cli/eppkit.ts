import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import yargs, { type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { COMMAND_MODULES } from './commands.ts';
import { printError } from './output.ts';
import { env } from '../core/env.ts';
import { EppkitError } from '../core/errors.ts';

const commands: CommandModule[] = [];
for (const rel of COMMAND_MODULES) {
  const url = new URL(rel, import.meta.url);
  if (!existsSync(fileURLToPath(url))) continue;
  const mod = (await import(url.href)) as { default: CommandModule };
  commands.push(mod.default);
}

try {
  // The EPPKIT_* environment is an input like the others: checked once, up front, every bad
  // variable named (core/env.ts).
  env();
  await yargs(hideBin(process.argv))
    .scriptName('eppkit')
    .usage('$0 <command> [options]\n\nTest harness and programmable mock Endpoint Picker for ext_proc data planes.')
    .command(commands)
    .option('color', { type: 'boolean', global: true, describe: 'colours on a terminal (default); --no-color or NO_COLOR=1 turns them off' })
    .demandCommand(1, 'Name a command; `eppkit --help` lists them.')
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      if (err) throw err;
      throw new EppkitError('EPPKIT_USAGE', { reason: msg ?? 'bad usage' });
    })
    .parseAsync();
} catch (e) {
  process.exitCode = printError(e);
}
