// `eppkit run [scenario files or folders...] [--data-plane <name>[,<name>...]|all] [--plane <file>]...
//   [--runtime local|docker] [--report-dir <dir>] [--tag <t>] [--bail]`
// Exit 0 when every selected scenario passed (skips are not failures), 1 when any failed (or,
// with CI set, when a data plane named explicitly is not available here), 2 for bad usage or a
// bad scenario file (file, line and path named; no stack trace).
import { resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { EppkitError, loadAll } from '../../core/errors.ts';
import type { DataPlaneDriver, Runtime } from '../data-planes/data-plane-driver.ts';
import { ExternalDriver, type ExternalOverrides } from '../data-planes/external-driver.ts';
import { PlaneFileDriver, loadPlaneDrivers } from '../data-planes/plane-file-driver.ts';
import { DRIVERS, findDriver } from '../data-planes/registry.ts';
import { ConformanceReporter } from '../reporters/conformance-reporter.ts';
import { ConsoleReporter } from '../reporters/console-reporter.ts';
import { HtmlReporter } from '../reporters/html-reporter.ts';
import { JsonReporter } from '../reporters/json-reporter.ts';
import { JunitReporter } from '../reporters/junit-reporter.ts';
import { MarkdownReporter } from '../reporters/markdown-reporter.ts';
import { loadScenarios } from '../scenarios/load-scenarios.ts';
import { defaultConcurrency, runAll } from '../runner/runner.ts';
import { stopAllOnInterrupt } from '../launch/interrupt.ts';

interface Args {
  paths: string[];
  'data-plane'?: string;
  plane?: string | string[];
  runtime: string;
  'report-dir'?: string;
  tag: string[];
  bail: boolean;
  strict: boolean;
  concurrency?: number;
  'external-url'?: string;
  'external-epp-port'?: number;
}

/** The drivers `spec` names; `external` carries the --external-* flags (never process.env). */
export function selectDrivers(spec: string, external: ExternalOverrides = {}): DataPlaneDriver[] {
  const configure = (d: DataPlaneDriver): DataPlaneDriver => (d instanceof ExternalDriver ? d.withOverrides(external) : d);
  if (spec.trim() === 'all') return DRIVERS.map(configure);
  const names = spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw new EppkitError('EPPKIT_USAGE', { reason: '--data-plane needs a name, a comma-separated list, or all' });
  return [...new Set(names)].map((n) => configure(findDriver(n)));
}

export function defaultReportDir(now = new Date()): string {
  return resolve('reports', now.toISOString().replace(/[:.]/g, '-'));
}

const command: CommandModule<object, Args> = {
  command: 'run [paths..]',
  describe: 'Run scenarios (files or folders; default: the built-in suite) against data planes',
  builder: (y) =>
    y
      .positional('paths', { type: 'string', array: true, default: [], describe: 'scenario files or folders (default: scenarios/)' })
      .option('data-plane', { type: 'string', describe: 'data plane name(s), comma-separated, or all (see eppkit list); default node-proxy unless --plane is given' })
      // Not array: true (that would swallow the scenario paths after it); repeated = an array.
      .option('plane', { type: 'string', describe: 'a plane file: your data plane, started per scenario or running at a URL (repeatable; docs/your-data-plane.md)' })
      .option('runtime', { type: 'string', default: 'local', describe: 'local processes or docker containers (local|docker)' })
      .option('report-dir', { type: 'string', describe: 'where reports go (default reports/<timestamp>/)' })
      .option('tag', { type: 'string', array: true, default: [], describe: 'only scenarios with one of these tags (repeatable)' })
      .option('bail', { type: 'boolean', default: false, describe: 'stop starting scenarios after the first failure' })
      .option('strict', { type: 'boolean', default: false, describe: "a data plane's leak (fds or RSS growth over its bound in a scenario) fails the scenario instead of warning" })
      .option('concurrency', { type: 'number', describe: `scenario × data plane pairs run at once (default ${defaultConcurrency()})` })
      .option('external-url', { type: 'string', describe: 'URL of your own data plane (the external data plane; EPPKIT_EXTERNAL_URL)' })
      .option('external-epp-port', { type: 'number', describe: 'port your data plane expects the mock EPP on, 127.0.0.1 (EPPKIT_EXTERNAL_EPP_PORT)' }) as never,
  handler: async (argv) => {
    if (argv.runtime !== 'local' && argv.runtime !== 'docker') throw new EppkitError('EPPKIT_USAGE', { reason: `--runtime must be local or docker (got "${argv.runtime}")` });
    const runtime = argv.runtime as Runtime;
    const c = argv.concurrency;
    if (c !== undefined && (!Number.isInteger(c) || c < 1 || c > 32)) throw new EppkitError('EPPKIT_USAGE', { reason: '--concurrency must be an integer 1-32' });
    const planes = argv.plane === undefined ? [] : Array.isArray(argv.plane) ? argv.plane : [argv.plane];
    const builtIn = argv['data-plane'] ?? (planes.length > 0 ? undefined : 'node-proxy');
    const external = { url: argv['external-url'] || undefined, eppPort: argv['external-epp-port'] };
    const builtInDrivers = builtIn ? selectDrivers(builtIn, external) : [];
    // Every bad plane file and scenario file at once, not the first one.
    const [planeDrivers, loadedScenarios] = loadAll(() => loadPlaneDrivers(planes), () => loadScenarios(argv.paths));
    const drivers = [...builtInDrivers, ...planeDrivers];
    const names = new Set<string>();
    for (const d of drivers) {
      if (names.has(d.name)) throw new EppkitError('EPPKIT_USAGE', { reason: `two data planes are named "${d.name}": rename the plane file's name` });
      names.add(d.name);
    }
    let scenarios = loadedScenarios;
    if (argv.tag.length > 0) scenarios = scenarios.filter((s) => s.scenario.tags.some((t) => argv.tag.includes(t)));
    // An override for a scenario that exists nowhere (this run, the built-in suite) is most
    // likely a typo in its name.
    const known = new Set([...scenarios, ...(argv.paths.length > 0 ? loadScenarios([]) : [])].map((s) => s.scenario.name));
    for (const d of drivers)
      if (d instanceof PlaneFileDriver)
        for (const name of Object.keys(d.plane.overrides)) if (!known.has(name)) process.stderr.write(`warning: ${d.file} overrides.${name}: no scenario has this name\n`);
    if (scenarios.length === 0) throw new EppkitError('EPPKIT_USAGE', { reason: `no scenario selected${argv.tag.length ? ` (tags: ${argv.tag.join(', ')})` : ''}` });
    const reportDir = resolve(argv['report-dir'] ?? defaultReportDir());
    // Ctrl-C / SIGTERM: take every mock EPP and data plane down with us, then exit 130.
    stopAllOnInterrupt();
    const report = await runAll({
      command: ['eppkit', ...process.argv.slice(2)].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(' '),
      scenarios,
      drivers,
      runtime,
      reportDir,
      bail: argv.bail,
      strict: argv.strict,
      ...(c !== undefined ? { concurrency: c } : {}),
      reporters: [new ConsoleReporter(), new JsonReporter(), new JunitReporter(), new MarkdownReporter(), new ConformanceReporter(), new HtmlReporter()],
    });
    // A data plane named on purpose that cannot run here: in CI that is a broken setup, not a skip.
    const explicit = builtIn?.trim() !== 'all';
    const missing = explicit ? report.dataPlanes.filter((d) => !d.available) : [];
    for (const d of missing) process.stderr.write(`${process.env.CI ? 'error' : 'warning'}: data plane ${d.name} is not available here: ${d.reason ?? ''}\n`);
    process.exitCode = report.summary.failed > 0 || (missing.length > 0 && process.env.CI) ? 1 : 0;
  },
};

export default command;
