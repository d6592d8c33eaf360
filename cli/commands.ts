// The commands of `eppkit`, one module each, owned by the folder that implements them. Static
// imports: a command whose file is missing or broken fails the start loudly (it used to be
// skipped silently when its file did not exist).
import type { CommandModule } from 'yargs';
import backend from '../harness/backends/backend-command.ts';
import bench from '../harness/bench/bench-command.ts';
import build from '../harness/build/build-command.ts';
import list from '../harness/cli/list-command.ts';
import report from '../harness/cli/report-command.ts';
import run from '../harness/cli/run-command.ts';
import fuzz from '../harness/fuzz/fuzz-command.ts';
import mockEpp from '../mock-epp/mock-epp-command.ts';
import nodeProxy from '../proxies/node-proxy/node-proxy-command.ts';

export const COMMANDS: readonly CommandModule[] = [
  mockEpp as CommandModule,
  nodeProxy as CommandModule,
  run as CommandModule,
  list as CommandModule,
  report as CommandModule,
  bench as CommandModule,
  build,
  backend as CommandModule,
  fuzz as CommandModule,
];

/** A command's name as typed: `run [paths..]` -> `run`. */
export function commandName(c: CommandModule): string {
  const spec = Array.isArray(c.command) ? c.command[0] : c.command;
  return String(spec ?? '').split(' ')[0] ?? '';
}
