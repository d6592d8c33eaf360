// `eppkit list`: the scenarios (built-in or under the given paths) and the data planes, with
// whether each data plane is available here and, if not, what to install.
import { chalk } from '../../cli/output.ts';
import type { CommandModule } from 'yargs';
import { EppkitError } from '../../core/errors.ts';
import type { Runtime } from '../data-planes/data-plane-driver.ts';
import { PlaneFileDriver, loadPlaneDrivers } from '../data-planes/plane-file-driver.ts';
import { DRIVERS } from '../data-planes/registry.ts';
import { loadScenarios } from '../scenarios/load-scenarios.ts';
import { requiredFeatures } from '../runner/run-scenario.ts';

interface Args {
  paths: string[];
  runtime: string;
  json: boolean;
  plane?: string | string[];
}

const command: CommandModule<object, Args> = {
  command: 'list [paths..]',
  describe: 'List scenarios and data planes (and whether each data plane is available here)',
  builder: (y) =>
    y
      .positional('paths', { type: 'string', array: true, default: [], describe: 'scenario files or folders (default: scenarios/)' })
      .option('runtime', { type: 'string', default: 'local', describe: 'check availability for local|docker' })
      .option('json', { type: 'boolean', default: false, describe: 'machine-readable output' })
      .option('plane', { type: 'string', describe: 'also check plane files (repeatable): valid, available, what they claim' }) as never,
  handler: async (argv) => {
    if (argv.runtime !== 'local' && argv.runtime !== 'docker') throw new EppkitError('EPPKIT_USAGE', { reason: `--runtime must be local or docker (got "${argv.runtime}")` });
    const scenarios = loadScenarios(argv.paths);
    const planeFiles = loadPlaneDrivers(argv.plane === undefined ? [] : Array.isArray(argv.plane) ? argv.plane : [argv.plane]);
    const planes = await Promise.all([...DRIVERS, ...planeFiles].map(async (d) => ({ d, a: await d.available(argv.runtime as Runtime) })));
    if (argv.json) {
      process.stdout.write(
        `${JSON.stringify(
          {
            scenarios: scenarios.map((s) => ({ name: s.scenario.name, file: s.file, description: s.scenario.description, tags: s.scenario.tags, features: requiredFeatures(s.scenario) })),
            dataPlanes: planes.map(({ d, a }) => ({ name: d.name, description: d.description, available: a.ok, ...(a.reason ? { reason: a.reason } : {}), features: [...d.features] })),
          },
          null,
          2,
        )}\n`,
      );
      return;
    }
    const out: string[] = [chalk.bold(`Scenarios (${scenarios.length})`)];
    const w = Math.max(...scenarios.map((s) => s.scenario.name.length));
    for (const s of scenarios) {
      const tags = s.scenario.tags.length ? chalk.cyan(` [${s.scenario.tags.join(', ')}]`) : '';
      out.push(`  ${s.scenario.name.padEnd(w)}  ${s.scenario.description.split('\n')[0]}${tags}`);
      out.push(chalk.dim(`  ${''.padEnd(w)}  needs: ${requiredFeatures(s.scenario).join(', ')}`));
    }
    out.push('', chalk.bold(`Data planes (runtime ${argv.runtime})`));
    const dw = Math.max(...planes.map(({ d }) => d.name.length));
    for (const { d, a } of planes) {
      out.push(`  ${d.name.padEnd(dw)}  ${a.ok ? chalk.green('available') : chalk.yellow('not available')}  ${d.description}`);
      if (!a.ok) out.push(chalk.dim(`  ${''.padEnd(dw)}  why: ${a.reason}`));
      if (d instanceof PlaneFileDriver) out.push(chalk.dim(`  ${''.padEnd(dw)}  ${d.file}: ${[...d.features].join(', ')}`));
    }
    process.stdout.write(`${out.join('\n')}\n`);
  },
};

export default command;
