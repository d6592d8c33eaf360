// The processes a bench target needs besides the data plane: the echo backend and the EPP.
// Each comes in two kinds: compiled (proxies/nginx-epp/bench-tools, built by `eppkit build
// bench`: one thread each, a few µs per request) or eppkit's Node ones (`eppkit backend`, `eppkit
// mock-epp`: the scenarios' echo backend and the full mock). With Node helpers they take most of
// a 2-core machine's CPU and every comparison between planes is diluted, so `auto` (the default)
// takes the compiled ones whenever they are built and the report says which ran.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { EppkitError } from '../../core/errors.ts';
import { BENCH_TOOLS, benchToolPath, builtBenchTool } from '../build/bench-tools-build.ts';
import { eppkitCommand, launch, type Launched } from '../launch/launch.ts';
import { Wait } from '../launch/wait-strategy.ts';
import { env } from '../../core/env.ts';

export const BACKEND_KINDS = ['auto', 'native', 'node'] as const;
export type BackendKind = (typeof BACKEND_KINDS)[number];
export const EPP_KINDS = ['auto', 'native', 'mock'] as const;
export type EppKind = (typeof EPP_KINDS)[number];

export interface HelperPlan {
  backend: { kind: 'native' | 'node'; command: string; args: string[]; description: string };
  epp: { kind: 'native' | 'mock'; command: string; args: string[]; description: string };
}

const BUILD_HINT = 'run `eppkit build bench` (cargo, a few seconds after `eppkit build nginx`)';

/** Decides which helpers run; `native` asked for but not built is a usage error (all problems at once). */
export function planHelpers(want: { backend: BackendKind; epp: EppKind }): HelperPlan {
  const echo = builtBenchTool(BENCH_TOOLS.echoBackend);
  const epp = builtBenchTool(BENCH_TOOLS.benchEpp);
  const problems: string[] = [];
  if (want.backend === 'native' && !echo) problems.push(`--backend native: ${benchToolPath(BENCH_TOOLS.echoBackend)} is not built; ${BUILD_HINT}`);
  if (want.epp === 'native' && !epp) problems.push(`--epp native: ${benchToolPath(BENCH_TOOLS.benchEpp)} is not built; ${BUILD_HINT}`);
  if (problems.length > 0) throw new EppkitError('EPPKIT_USAGE', { reason: problems.join('\n') });
  const node = eppkitCommand();
  const nativeBackend = echo !== undefined && want.backend !== 'node';
  const nativeEpp = epp !== undefined && want.epp !== 'mock';
  return {
    backend: nativeBackend
      ? { kind: 'native', command: echo, args: [], description: `compiled echo backend (${BENCH_TOOLS.echoBackend}, one thread)` }
      : { kind: 'node', command: node.command, args: [...node.args, 'backend'], description: `Node echo backend (eppkit backend)${echo ? '' : `; the compiled one is not built: ${BUILD_HINT}`}` },
    epp: nativeEpp
      ? { kind: 'native', command: epp, args: [], description: `compiled bench EPP (${BENCH_TOOLS.benchEpp}: tonic, one thread, pick + envoy.lb metadata)` }
      : { kind: 'mock', command: node.command, args: [...node.args, 'mock-epp'], description: `Node mock EPP (eppkit mock-epp, journal of 1,000)${epp ? '' : `; the compiled one is not built: ${BUILD_HINT}`}` },
  };
}

export interface StartedHelper {
  proc: Launched;
  /** ip:port from its ready line. */
  address: string;
}

/** Starts a helper and waits for its ready line (which names where it listens). */
export async function startHelper(what: string, command: string, args: string[], ready: RegExp, logFile: string): Promise<StartedHelper> {
  const proc = await launch(
    { runtime: 'local', workDir: dirname(logFile) },
    {
      what,
      image: '',
      command: [command, ...args],
      logFile,
      // warn: per-request info logs would cost the Node helpers CPU the bench is measuring.
      env: { NO_COLOR: '1', EPPKIT_LOG_LEVEL: env().EPPKIT_BENCH_LOG_LEVEL ?? 'warn' },
      waitFor: Wait.forLogLine(ready),
      startupTimeoutMs: 20_000,
    },
  );
  return { proc, address: proc.ready[1] ?? '' };
}

export function startBenchBackend(plan: HelperPlan, logFile: string): Promise<StartedHelper> {
  const b = plan.backend;
  return startHelper('echo backend', b.command, [...b.args, '--listen', '127.0.0.2:0', '--name', 'bench'], /listening on http:\/\/(\S+)/, logFile);
}

/** The EPP, picking `backendAddress`; `port` 0 = a free one. */
export function startBenchEpp(plan: HelperPlan, backendAddress: string, port: number, dir: string): Promise<StartedHelper> {
  const e = plan.epp;
  const listen = `127.0.0.1:${port}`;
  if (e.kind === 'native') return startHelper('bench EPP', e.command, ['--listen', listen, '--endpoints', backendAddress], /grpc listening on (\S+)/, join(dir, 'bench-epp.log'));
  // The mock's journal is capped anyway; a small cap keeps its memory flat over a long run.
  const cfgFile = join(dir, 'mock-epp.json');
  writeFileSync(cfgFile, JSON.stringify({ endpoints: [backendAddress], journal: { maxEntries: 1000, firstBytes: 0 } }));
  return startHelper('mock EPP', e.command, [...e.args, '--host', '127.0.0.1', '--port', String(port), '--admin-port', '0', '--config', cfgFile], /grpc listening on (\S+)/, join(dir, 'mock-epp.log'));
}
