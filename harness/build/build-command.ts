// `eppkit build <what>`: builds artifacts the data planes need. Subcommands live in this folder,
// one entry each in SUBCOMMANDS (`nginx` and `bench` here, `images` from harness/containers).
import type { Argv, CommandModule } from 'yargs';
import { buildImagesCommand } from '../containers/build-images.ts';
import { buildBenchTools } from './bench-tools-build.ts';
import { buildNginxModule } from './nginx-module-build.ts';

interface NginxArgs {
  jobs: number;
  quiet: boolean;
}

const nginx: CommandModule<object, NginxArgs> = {
  command: 'nginx',
  describe: 'Build ngx_http_rust_epp_module (the native nginx EPP module); prints the .so path as the last line',
  builder: (y) =>
    y
      .option('jobs', { type: 'number', default: 2, describe: 'cargo build jobs' })
      .option('quiet', { type: 'boolean', default: false, describe: "don't show cargo's progress on stderr" }) as never,
  handler: async (argv) => {
    const so = await buildNginxModule({ jobs: argv.jobs, onOutput: argv.quiet ? undefined : (s) => process.stderr.write(s) });
    process.stdout.write(`${so}\n`);
  },
};

const bench: CommandModule<object, NginxArgs> = {
  command: 'bench',
  describe: "Build eppkit bench's compiled echo backend and ext_proc EPP (used by `eppkit bench` when built); prints their paths",
  builder: nginx.builder as never,
  handler: async (argv) => {
    const paths = await buildBenchTools({ jobs: argv.jobs, onOutput: argv.quiet ? undefined : (s) => process.stderr.write(s) });
    process.stdout.write(`${paths.join('\n')}\n`);
  },
};

export const SUBCOMMANDS: CommandModule<object, never>[] = [
  nginx as unknown as CommandModule<object, never>,
  bench as unknown as CommandModule<object, never>,
  buildImagesCommand as unknown as CommandModule<object, never>,
];

const command: CommandModule = {
  command: 'build',
  describe: 'Build what a data plane or the bench needs (nginx: the native EPP module; bench: the compiled echo backend and EPP)',
  builder: (y: Argv) => {
    let b = y;
    for (const s of SUBCOMMANDS) b = b.command(s);
    return b.demandCommand(1, 'name what to build, e.g. `eppkit build nginx`');
  },
  handler: () => undefined,
};

export default command;
