// The `eppkit` command line as one yargs instance: every command (statically imported), each
// with examples in its --help, global --color, and a user's mistake as an EppkitError (exit 2):
// an unknown command reads "Unknown command 'x'. Did you mean 'y'?", an unknown flag names the
// close known one. `dryRun` swaps every handler (subcommands too) for a recorder, so tests can
// parse the examples of --help and of the README with the real options without running them.
import yargs, { type Argv, type CommandModule } from 'yargs';
import { didYouMean } from '../core/did-you-mean.ts';
import { EppkitError } from '../core/errors.ts';
import { COMMAND_EXAMPLES } from './command-examples.ts';
import { COMMANDS, commandName } from './commands.ts';

export interface DryRun {
  /** Called instead of a handler, with the command's path (`build nginx`) and its parsed arguments. */
  (command: string, argv: Record<string, unknown>): void;
}

// A builder may register subcommands (`build nginx`): in a dry run they get recorders too.
function dry(c: CommandModule, record: DryRun, parent = ''): CommandModule {
  const path = `${parent}${commandName(c)}`;
  const builder = c.builder;
  return {
    ...c,
    handler: (argv) => record(path, argv as Record<string, unknown>),
    builder:
      typeof builder === 'function'
        ? (y: Argv) => {
            const proxy: Argv = new Proxy(y, {
              get(target, key, receiver) {
                if (key === 'command')
                  return (...args: unknown[]) => {
                    const [first] = args;
                    if (first && typeof first === 'object' && !Array.isArray(first)) target.command(dry(first as CommandModule, record, `${path} `));
                    else (target.command as (...a: unknown[]) => unknown)(...args);
                    return proxy;
                  };
                const v = Reflect.get(target, key, receiver) as unknown;
                if (typeof v !== 'function') return v;
                return (...a: unknown[]) => {
                  const out = (v as (...x: unknown[]) => unknown).apply(target, a);
                  return out === target ? proxy : out;
                };
              },
            });
            const out = (builder as (y: Argv) => unknown)(proxy);
            return (out === proxy ? y : out) as Argv;
          }
        : builder,
  } as CommandModule;
}

function withExamples(c: CommandModule): CommandModule {
  const examples = COMMAND_EXAMPLES[commandName(c)] ?? [];
  if (examples.length === 0) return c;
  const builder = c.builder;
  return {
    ...c,
    builder: (y: Argv) => {
      const b = (typeof builder === 'function' ? (builder as (y: Argv) => Argv)(y) : builder ? y.options(builder) : y) ?? y;
      for (const [cmd, what] of examples) b.example(cmd, what);
      return b;
    },
  } as CommandModule;
}

/** Names a user can type as the first word: the commands and their aliases. */
export function commandNames(): string[] {
  return COMMANDS.flatMap((c) => [commandName(c), ...(Array.isArray(c.aliases) ? c.aliases : c.aliases ? [c.aliases] : [])]);
}

/** An unknown first word is an unknown command, said as such (yargs would say "Unknown argument"). */
export function checkCommand(args: readonly string[]): void {
  const first = args.find((a) => !a.startsWith('-'));
  // Global flags take no value, so the first word that is not a flag is the command.
  if (first === undefined) return;
  const names = commandNames();
  if (names.includes(first)) return;
  const guess = didYouMean(first, names);
  throw new EppkitError('EPPKIT_USAGE', {
    reason: `Unknown command '${first}'.${guess ? ` Did you mean '${guess}'?` : ''} Commands: ${COMMANDS.map(commandName).join(', ')}; \`eppkit --help\` says more.`,
  });
}

/** yargs' "Unknown argument: data-plan" with the close known flag of that command. */
function usageReason(msg: string, args: readonly string[], known: readonly string[]): string {
  // recommendCommands() on a subcommand typo (`build ngnix`).
  const sub = /^Did you mean (\S+)\?$/.exec(msg);
  if (sub) {
    const typed = args.find((a) => !a.startsWith('-') && didYouMean(a, [sub[1] ?? '']) !== undefined);
    return `Unknown command '${typed ?? '?'}'. Did you mean '${sub[1]}'?`;
  }
  const m = /^Unknown arguments?: (.+)$/.exec(msg);
  if (!m) return msg;
  const words = (m[1] ?? '').split(', ');
  const camel = (a: string): string => a.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  // yargs names an unknown --data-plan twice, also as dataPlan.
  const parts = words.filter((a) => !words.some((b) => b !== a && camel(b) === a)).map((a) => {
    // A word typed as a flag (`--data-plan`, `-x`) is an unknown option; any other an extra argument.
    const asFlag = args.some((x) => x === `--${a}` || x.startsWith(`--${a}=`) || x === `-${a}` || x === `--no-${a}`);
    if (!asFlag) return `unexpected argument '${a}'`;
    const guess = didYouMean(a, known);
    return `unknown option --${a}${guess ? ` (did you mean --${guess}?)` : ''}`;
  });
  return `${parts.join(', ')}; \`--help\` lists the options.`;
}

export function eppkitCli(args: readonly string[], opts: { dryRun?: DryRun } = {}): Argv {
  const commands = COMMANDS.map((c) => withExamples(opts.dryRun ? dry(c, opts.dryRun) : c));
  const cli: Argv = yargs([...args])
    .scriptName('eppkit')
    .usage('$0 <command> [options]\n\nTest harness and programmable mock Endpoint Picker for ext_proc data planes.')
    .command(commands)
    .option('color', { type: 'boolean', global: true, describe: 'colours on a terminal (default); --no-color or NO_COLOR=1 turns them off' })
    .demandCommand(1, 'Name a command; `eppkit --help` lists them.')
    .strict()
    .recommendCommands()
    .example('$0 run', 'the scenario suite against node-proxy')
    .example('$0 mock-epp --port 9002 --admin-port 9003 --endpoints 127.0.0.2:8000', 'a mock EPP')
    .example('$0 <command> --help', 'the options and examples of a command')
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      if (err) throw err;
      // While a command parses, the instance holds that command's options.
      const known = Object.keys((cli as unknown as { getOptions(): { key?: Record<string, unknown> } }).getOptions().key ?? {});
      throw new EppkitError('EPPKIT_USAGE', { reason: usageReason(msg ?? 'bad usage', args, known) });
    });
  return cli;
}

/** Runs `eppkit` with these arguments: an unknown command or a user's mistake is an EppkitError. */
export async function runEppkit(args: readonly string[]): Promise<void> {
  checkCommand(args);
  await eppkitCli(args).parseAsync();
}
