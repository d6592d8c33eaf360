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
import { IMAGES_BY_ROLE } from '../containers/image-roles.ts';
import type { Runtime } from '../data-planes/data-plane-driver.ts';
import { eppkitInvocation, launch, type Launched, type LaunchSpec } from '../launch/launch.ts';
import type { TestBed } from '../launch/test-bed.ts';
import { Wait } from '../launch/wait-strategy.ts';
import { env } from '../../core/env.ts';

export const BACKEND_KINDS = ['auto', 'native', 'node'] as const;
export type BackendKind = (typeof BACKEND_KINDS)[number];
export const EPP_KINDS = ['auto', 'native', 'mock'] as const;
export type EppKind = (typeof EPP_KINDS)[number];

export interface HelperPlan {
  /** native: a compiled tool (a local process: no image carries it); node: `eppkit <args>`, in eppkit/node with --runtime docker. */
  backend: { kind: 'native' | 'node'; command: string; description: string };
  epp: { kind: 'native' | 'mock'; command: string; description: string };
}

const BUILD_HINT = 'run `eppkit build bench` (cargo, a few seconds after `eppkit build nginx`)';

/** Decides which helpers run; `native` asked for but not built is a usage error (all problems at once). */
export function planHelpers(want: { backend: BackendKind; epp: EppKind }, runtime: Runtime = 'local'): HelperPlan {
  const echo = builtBenchTool(BENCH_TOOLS.echoBackend);
  const epp = builtBenchTool(BENCH_TOOLS.benchEpp);
  const problems: string[] = [];
  if (want.backend === 'native' && !echo) problems.push(`--backend native: ${benchToolPath(BENCH_TOOLS.echoBackend)} is not built; ${BUILD_HINT}`);
  if (want.epp === 'native' && !epp) problems.push(`--epp native: ${benchToolPath(BENCH_TOOLS.benchEpp)} is not built; ${BUILD_HINT}`);
  if (problems.length > 0) throw new EppkitError('EPPKIT_USAGE', { reason: problems.join('\n') });
  const where = runtime === 'docker' ? `, in a container (${IMAGES_BY_ROLE.eppkit})` : '';
  const nativeBackend = echo !== undefined && want.backend !== 'node';
  const nativeEpp = epp !== undefined && want.epp !== 'mock';
  return {
    backend: nativeBackend
      ? { kind: 'native', command: echo, description: `compiled echo backend (${BENCH_TOOLS.echoBackend}, one thread, a local process)` }
      : { kind: 'node', command: 'backend', description: `Node echo backend (eppkit backend${where})${echo ? '' : `; the compiled one is not built: ${BUILD_HINT}`}` },
    epp: nativeEpp
      ? { kind: 'native', command: epp, description: `compiled bench EPP (${BENCH_TOOLS.benchEpp}: tonic, one thread, pick + envoy.lb metadata, a local process)` }
      : { kind: 'mock', command: 'mock-epp', description: `Node mock EPP (eppkit mock-epp, journal of 1,000${where})${epp ? '' : `; the compiled one is not built: ${BUILD_HINT}`}` },
  };
}

export interface StartedHelper {
  proc: Launched;
  /** ip:port from its ready line. */
  address: string;
}

/** A helper's launch: what it runs, where (`local` for compiled tools, else the bed's runtime) and its ready line (which names where it listens). */
export interface HelperLaunch {
  spec: LaunchSpec<RegExpMatchArray>;
  local: boolean;
}

function helperSpec(what: string, kind: 'native' | 'node' | 'mock', command: string, args: string[], ready: RegExp, logFile: string): HelperLaunch {
  const local = kind === 'native';
  return {
    local,
    spec: {
      what,
      ...(local ? { image: '', command: [command, ...args] } : eppkitInvocation([command, ...args])),
      logFile,
      // warn: per-request info logs would cost the Node helpers CPU the bench is measuring.
      env: { NO_COLOR: '1', EPPKIT_LOG_LEVEL: env().EPPKIT_BENCH_LOG_LEVEL ?? 'warn' },
      waitFor: Wait.forLogLine(ready),
      startupTimeoutMs: 20_000,
    },
  };
}

export function benchBackendLaunch(plan: HelperPlan, dir: string): HelperLaunch {
  const b = plan.backend;
  return helperSpec('echo backend', b.kind, b.command, ['--listen', '127.0.0.2:0', '--name', 'bench'], /listening on http:\/\/(\S+)/, join(dir, 'backend.log'));
}

/** The EPP, picking `backendAddress`; `port` 0 = a free one. The mock's config file goes in `dir` (mounted in a container). */
export function benchEppLaunch(plan: HelperPlan, backendAddress: string, port: number, dir: string): HelperLaunch {
  const e = plan.epp;
  const listen = `127.0.0.1:${port}`;
  if (e.kind === 'native') return helperSpec('bench EPP', 'native', e.command, ['--listen', listen, '--endpoints', backendAddress], /grpc listening on (\S+)/, join(dir, 'bench-epp.log'));
  // The mock's journal is capped anyway; a small cap keeps its memory flat over a long run.
  const cfgFile = join(dir, 'mock-epp.json');
  writeFileSync(cfgFile, JSON.stringify({ endpoints: [backendAddress], journal: { maxEntries: 1000, firstBytes: 0 } }));
  return helperSpec('mock EPP', 'mock', e.command, ['--host', '127.0.0.1', '--port', String(port), '--admin-port', '0', '--config', cfgFile], /grpc listening on (\S+)/, join(dir, 'mock-epp.log'));
}

/** Starts a helper on the bed (stopped with it). */
export async function startOnBed(bed: TestBed, h: HelperLaunch): Promise<StartedHelper> {
  const proc = await bed.withLaunched(h.spec, h.local ? { runtime: 'local' } : {});
  return { proc, address: proc.ready[1] ?? '' };
}

/** Starts a compiled or eppkit helper here, outside any bed (the mock-epp bench's load helpers, tests). */
export async function startHelper(what: string, command: string, args: string[], ready: RegExp, logFile: string): Promise<StartedHelper> {
  const h = helperSpec(what, 'native', command, args, ready, logFile);
  const proc = await launch({ runtime: 'local', workDir: dirname(logFile) }, h.spec);
  return { proc, address: proc.ready[1] ?? '' };
}
