// `eppkit fuzz [--data-plane <name>[,<name>...]] [--seed n] [--duration 5m | --runs N]
//   [--replay case.json] [--out dir] [--timeout-ms 200] [--profile close-buffered,...]`
// Exit 0 when every plane ran clean (or, with --replay, the case no longer fails), 1 when a
// failure was found (or reproduced), 2 for bad usage. docs/fuzz.md.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { EppkitError } from '../../core/errors.ts';
import { routeWithDefaults } from '../../core/route-model.ts';
import { selectDrivers } from '../cli/run-command.ts';
import type { Runtime } from '../data-planes/data-plane-driver.ts';
import { findDriver } from '../data-planes/registry.ts';
import { loadPlaneDrivers } from '../data-planes/plane-file-driver.ts';
import type { DataPlaneDriver } from '../data-planes/data-plane-driver.ts';
import { killAllLaunched, stopAllOnInterrupt } from '../launch/interrupt.ts';
import { printError } from '../../cli/output.ts';
import { MiB, defaultRssLimit, parseSize, watchMemory } from './memory-guard.ts';
import { startWatchdog } from '../launch/watchdog.ts';
import { ALL_PROFILES, profilesFor, replayCase, runFuzz, type FuzzReport, type SavedCase } from './fuzz-runner.ts';

interface Args {
  'data-plane'?: string;
  plane?: string | string[];
  runtime: string;
  seed?: number;
  duration?: string;
  runs?: number;
  replay?: string;
  out?: string;
  'timeout-ms': number;
  'margin-ms': number;
  'shrink-budget': string;
  profile?: string;
  'max-rss'?: string;
}

/** "90s", "5m", "1h", "1500ms" or a number of seconds -> ms. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(s.trim());
  if (!m) throw new EppkitError('EPPKIT_USAGE', { reason: `not a duration: "${s}" (use 90s, 5m, 1h or 1500ms)` });
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms'];
  return Math.round(Number(m[1]) * mult);
}

function printReport(r: FuzzReport): void {
  const c = r.counts;
  const outcomes = Object.entries(c.outcomes)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  process.stdout.write(
    `${r.plane}: ${c.cases} cases, ${c.requests} requests, ${c.streams} ext_proc streams, ${c.answers} answers generated, ` +
      `${c.scriptShapes} distinct script shapes, ${c.wireShapes} distinct wire sequences, ${c.restarts} plane restarts, ${Math.round(r.durationMs / 1000)} s\n` +
      `  outcomes: ${outcomes || 'none'}\n` +
      Object.entries(c.known)
        .map(([why, n]) => `  known (${n}x): ${why}\n`)
        .join('') +
      r.leaks.map((l) => `  LEAK (${l.profile}): ${l.finding}\n`).join('') +
      (r.failures.length === 0 && r.leaks.length === 0 ? '  clean: no violation, no leak\n' : r.failures.map((f) => `  FAILED (${f.profile.name}): ${f.violations[0]?.check}: expected ${f.violations[0]?.expected}, got ${f.violations[0]?.received}\n    replay: eppkit fuzz --data-plane ${r.plane} --replay ${f.caseFile}\n`).join('')),
  );
}

const command: CommandModule<object, Args> = {
  command: 'fuzz',
  describe: 'Answer a data plane with random and malformed EPP sequences while clients send random requests, until it breaks a rule (docs/fuzz.md)',
  builder: (y) =>
    y
      .option('data-plane', { type: 'string', describe: 'data plane name(s), comma-separated, or all; default node-proxy unless --plane is given' })
      .option('plane', { type: 'string', describe: 'a plane file: your data plane (repeatable; docs/your-data-plane.md)' })
      .option('runtime', { type: 'string', default: 'local', describe: 'local processes or docker containers (local|docker)' })
      .option('seed', { type: 'number', describe: 'seed of the run (default: random, printed); same seed, same cases' })
      .option('duration', { type: 'string', describe: 'search time per data plane, e.g. 90s, 5m (default 60s unless --runs)' })
      .option('runs', { type: 'number', describe: 'cases per profile instead of a duration' })
      .option('replay', { type: 'string', describe: 'run a saved case.json once and say whether it still fails' })
      .option('out', { type: 'string', describe: 'where failures and reports go (default reports/fuzz-<timestamp>/)' })
      .option('timeout-ms', { type: 'number', default: 200, describe: "the data plane's per-message EPP timeout (delays are drawn around it)" })
      .option('margin-ms', { type: 'number', default: 2000, describe: 'extra time a request may take beyond what the EPP explains' })
      .option('shrink-budget', { type: 'string', default: '60s', describe: 'time allowed to shrink one failure' })
      .option('max-rss', { type: 'string', describe: `stop with an error when eppkit itself grows past this resident memory, e.g. 4g (default ${MiB(defaultRssLimit())} MiB: a quarter of this machine, at most 4 GiB)` })
      .option('profile', { type: 'string', describe: `profiles to run, comma-separated (default: every one the plane supports): ${ALL_PROFILES.map((p) => p.name).join(', ')}` }) as never,
  handler: async (argv) => {
    if (argv.runtime !== 'local' && argv.runtime !== 'docker') throw new EppkitError('EPPKIT_USAGE', { reason: `--runtime must be local or docker (got "${argv.runtime}")` });
    const runtime = argv.runtime as Runtime;
    if (argv.runs !== undefined && (!Number.isInteger(argv.runs) || argv.runs < 1)) throw new EppkitError('EPPKIT_USAGE', { reason: '--runs must be a positive integer' });
    if (argv.runs !== undefined && argv.duration !== undefined) throw new EppkitError('EPPKIT_USAGE', { reason: 'give --runs or --duration, not both' });
    if (!Number.isInteger(argv['timeout-ms']) || argv['timeout-ms'] < 10) throw new EppkitError('EPPKIT_USAGE', { reason: '--timeout-ms must be an integer >= 10' });
    const outDir = resolve(argv.out ?? resolve('reports', `fuzz-${new Date().toISOString().replace(/[:.]/g, '-')}`));
    const maxRss = argv['max-rss'] === undefined ? defaultRssLimit() : parseSize(argv['max-rss']);
    stopAllOnInterrupt();
    // However this process ends (SIGKILL, the OOM killer), its planes end with it; and growth
    // the in-process check cannot see (a native loop) is stopped at 1.5x the limit.
    startWatchdog({ ceilingBytes: Math.round(maxRss * 1.5) });
    // A leak stops the run (planes included) before the machine's OOM killer picks a victim.
    watchMemory({
      limitBytes: maxRss,
      onExceeded: (rss) => {
        killAllLaunched();
        printError(new EppkitError('EPPKIT_MEMORY_LIMIT', { what: 'eppkit fuzz', rss: MiB(rss), limit: MiB(maxRss) }));
        process.exit(1);
      },
    });
    const planes = argv.plane === undefined ? [] : Array.isArray(argv.plane) ? argv.plane : [argv.plane];
    const drivers: DataPlaneDriver[] = [...(argv['data-plane'] ? selectDrivers(argv['data-plane']) : []), ...loadPlaneDrivers(planes)];
    if (drivers.length === 0 && !argv.replay) drivers.push(findDriver('node-proxy'));
    if (argv.replay) {
      let saved: SavedCase;
      try {
        saved = JSON.parse(readFileSync(argv.replay, 'utf8')) as SavedCase;
      } catch (e) {
        throw new EppkitError('EPPKIT_CONFIG_UNREADABLE', { source: argv.replay, reason: (e as Error).message });
      }
      if (saved.version !== 1 || !saved.fuzzCase?.connections || !saved.profile) throw new EppkitError('EPPKIT_CONFIG_INVALID', { source: argv.replay }, [{ path: '', message: 'not an eppkit fuzz case file (version 1)' }]);
      // The plane named on the command line, else the one the case was found on.
      const driver = drivers.length === 1 ? (drivers[0] as DataPlaneDriver) : findDriver(saved.plane);
      const r = await replayCase({ driver, runtime, saved, outDir, marginMs: argv['margin-ms'] });
      if (r.violations.length === 0) {
        process.stdout.write(`${driver.name}: the case no longer fails\n`);
        process.exitCode = 0;
      } else {
        process.stdout.write(`${driver.name}: reproduced:\n${r.violations.map((v) => `  ${v.key} ${v.check}: expected ${v.expected}, got ${v.received}${v.outcome ? ` [${v.outcome}]` : ''}${'why' in v ? `\n    known: ${String(v.why)}` : ''}`).join('\n')}\n`);
        process.exitCode = 1;
      }
      return;
    }
    const seed = argv.seed ?? Math.floor(Math.random() * 2 ** 31);
    const durationMs = argv.runs === undefined ? parseDuration(argv.duration ?? '60s') : undefined;
    let failed = false;
    for (const driver of drivers) {
      const avail = await driver.available(runtime);
      if (!avail.ok) {
        process.stderr.write(`${process.env.CI ? 'error' : 'warning'}: data plane ${driver.name} is not available here: ${avail.reason ?? ''}\n`);
        if (process.env.CI) failed = true;
        continue;
      }
      let profiles = profilesFor(driver).filter((p) => !driver.unsupportedRoute?.(routeWithDefaults({ eppAddress: '127.0.0.1:1', failureMode: p.failureMode, bodyMode: p.bodyMode })));
      if (argv.profile) {
        const want = argv.profile.split(',').map((s) => s.trim());
        const unknown = want.filter((w) => !ALL_PROFILES.some((p) => p.name === w));
        if (unknown.length) throw new EppkitError('EPPKIT_USAGE', { reason: `unknown profile(s) ${unknown.join(', ')}; known: ${ALL_PROFILES.map((p) => p.name).join(', ')}` });
        profiles = profiles.filter((p) => want.includes(p.name));
      }
      process.stdout.write(`fuzzing ${driver.name} with seed ${seed} (${profiles.map((p) => p.name).join(', ')}); output in ${outDir}\n`);
      const report = await runFuzz({
        driver,
        runtime,
        seed,
        ...(argv.runs !== undefined ? { runs: argv.runs } : {}),
        ...(durationMs !== undefined ? { durationMs } : {}),
        profiles,
        timeoutMs: argv['timeout-ms'],
        marginMs: argv['margin-ms'],
        shrinkBudgetMs: parseDuration(argv['shrink-budget']),
        outDir,
        log: (l) => process.stdout.write(`${l}\n`),
      });
      printReport(report);
      if (report.failures.length > 0 || report.leaks.length > 0) failed = true;
    }
    process.exitCode = failed ? 1 : 0;
  },
};

export default command;
