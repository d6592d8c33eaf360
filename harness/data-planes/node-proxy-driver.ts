// Drives eppkit's own reference data plane (proxies/node-proxy) as a child process (or, with
// --runtime docker, in the eppkit/node container):
// `node bin/eppkit.js node-proxy ...`, flags for everything that has a flag and a config file
// for the rest (response processing, body limit, subset hint, EPP TLS).
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMultiRoute, listenerCount, planeRoutes, type RouteModel } from '../../core/route-model.ts';
import { IMAGES_BY_ROLE, containerAvailable } from '../containers/image-roles.ts';
import { eppkitInvocation, launch, type Launched } from '../launch/launch.ts';
import { Wait } from '../launch/wait-strategy.ts';
import { NODE_CRASH_PATTERNS, PlaneHealthMonitor } from './plane-health.ts';
import type { Availability, DataPlaneDriver, DriverContext, Feature, Runtime, StartedDataPlane } from './data-plane-driver.ts';

/** node-proxy (and its shim) print this once they listen. */
export const LISTENING = Wait.forLogLine(/listening on (http:\/\/\S+)/);

const PROXY_MODULE = new URL('../../proxies/node-proxy/node-proxy-command.ts', import.meta.url);

/** The config file part of a node-proxy invocation (options that have no flag). */
export function nodeProxyConfig(route: RouteModel): Record<string, unknown> {
  const cfg: Record<string, unknown> = {
    responseProcessing: route.responseProcessing,
    maxBodyBytes: route.maxBodyBytes,
    pathPrefix: route.pathPrefix,
  };
  if (route.subsetHint) cfg.subsetHint = [...route.subsetHint];
  if (route.eppTls) cfg.eppTls = { ...route.eppTls };
  if (route.bbr) cfg.bbr = { header: route.bbr.header, maxBodyBytes: route.bbr.maxBodyBytes, requireModel: route.bbr.requireModel };
  return cfg;
}

/**
 * multi-pool: the config file of one listener: every (route, pool) entry on it as `routes[]`
 * (a prefix repeated with weights is a weighted split). Each listener ("gateway") is its own
 * node-proxy process, as two Gateways are two deployments.
 */
export function nodeProxyListenerConfig(route: RouteModel, listener: number): Record<string, unknown> {
  const routes = planeRoutes(route)
    .filter((r) => (r.listener ?? 0) === listener)
    .map((r) => {
      const e: Record<string, unknown> = {
        ...nodeProxyConfig(r),
        eppAddress: r.eppAddress,
        failureMode: r.failureMode,
        timeoutMs: r.timeoutMs,
        bodyMode: r.bodyMode,
        fallbackEndpoints: [...r.fallbackEndpoints],
        allow: [...r.allow],
      };
      const shared = planeRoutes(route).filter((x) => (x.listener ?? 0) === listener && x.pathPrefix === r.pathPrefix).length;
      if (shared > 1) e.weight = r.weight ?? 1;
      return e;
    });
  return { routes };
}

/** The flags of a node-proxy invocation. */
export function nodeProxyArgs(route: RouteModel, listen: string, configFile: string): string[] {
  const args = [
    'node-proxy',
    '--listen', listen,
    '--epp', route.eppAddress,
    '--failure-mode', route.failureMode,
    '--timeout-ms', String(route.timeoutMs),
    '--body-mode', route.bodyMode,
    '--config', configFile,
  ];
  if (route.fallbackEndpoints.length > 0) args.push('--fallback', route.fallbackEndpoints.join(','));
  if (route.allow.length > 0) args.push('--allow', route.allow.join(','));
  return args;
}

export const nodeProxyDriver: DataPlaneDriver = {
  name: 'node-proxy',
  description: "eppkit's reference ext_proc data plane in Node (proxies/node-proxy), a local process",
  features: new Set<Feature>([
    'body-none',
    'body-buffered',
    'body-streamed',
    'fail-open',
    'fail-close',
    'fallback-list',
    'immediate-response',
    'header-mutation',
    'served-endpoint',
  'response-header-mutation',
    'timeout',
    'endpoint-validation',
    'allowlist',
    'tls',
    'client-abort',
    'ipv6-endpoint',
    'subset-hint',
    'bbr',
    'multi-pool',
  ]),

  async available(runtime: Runtime): Promise<Availability> {
    if (!existsSync(fileURLToPath(PROXY_MODULE))) return { ok: false, reason: 'proxies/node-proxy is not in this checkout' };
    if (runtime === 'docker') return containerAvailable(IMAGES_BY_ROLE.eppkit);
    return { ok: true };
  },

  async start(route: RouteModel, ctx: DriverContext): Promise<StartedDataPlane> {
    if (isMultiRoute(route)) return startListeners(route, ctx);
    const configFile = join(ctx.workDir, 'node-proxy.json');
    writeFileSync(configFile, JSON.stringify(nodeProxyConfig(route), null, 2));
    // Local child process, or with --runtime docker the same command in eppkit/node (host network).
    const proc = await launch(ctx, {
      what: 'node-proxy',
      ...eppkitInvocation(nodeProxyArgs(route, `${ctx.host}:0`, configFile)),
      waitFor: LISTENING,
      startupTimeoutMs: 15_000,
      logFile: join(ctx.workDir, 'node-proxy.log'),
      env: { NO_COLOR: '1' },
      binds: route.eppTls?.caFile ? [route.eppTls.caFile] : [],
    });
    const url = (proc.ready[1] ?? '').replace(/\/$/, '');
    const monitor = new PlaneHealthMonitor('node-proxy').withProcess('node-proxy', proc).withLogFile('node-proxy', join(ctx.workDir, 'node-proxy.log'), NODE_CRASH_PATTERNS, 0);
    let stopped: Promise<void> | undefined;
    const stop = (): Promise<void> => (stopped ??= monitor.stopping(() => proc.stop()));
    return {
      name: 'node-proxy',
      url,
      logs: () => proc.logs(),
      pids: () => monitor.pids(),
      health: () => monitor.health(),
      stop,
      [Symbol.asyncDispose]: stop,
    };
  },
};

/** multi-pool: one node-proxy process per listener, each with its routes. */
async function startListeners(route: RouteModel, ctx: DriverContext): Promise<StartedDataPlane> {
  const procs: Launched[] = [];
  const urls: string[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(procs.map((p) => p.stop()));
  };
  try {
    for (let i = 0; i < listenerCount(route); i++) {
      const configFile = join(ctx.workDir, `node-proxy.listener-${i}.json`);
      writeFileSync(configFile, JSON.stringify(nodeProxyListenerConfig(route, i), null, 2));
      const proc = await launch(ctx, {
        what: `node-proxy (listener ${i})`,
        ...eppkitInvocation(['node-proxy', '--listen', `${ctx.host}:0`, '--config', configFile]),
        waitFor: LISTENING,
        startupTimeoutMs: 15_000,
        logFile: join(ctx.workDir, `node-proxy.listener-${i}.log`),
        env: { NO_COLOR: '1' },
        binds: planeRoutes(route).flatMap((r) => (r.eppTls?.caFile ? [r.eppTls.caFile] : [])),
      });
      procs.push(proc);
      urls.push((proc.ready[1] ?? '').replace(/\/$/, ''));
    }
  } catch (e) {
    await stopAll();
    throw e;
  }
  // Every listener's process is part of the plane: any one's crash is the plane's.
  const monitor = new PlaneHealthMonitor('node-proxy');
  procs.forEach((p, i) => monitor.withProcess(`node-proxy (listener ${i})`, p).withLogFile(`node-proxy (listener ${i})`, join(ctx.workDir, `node-proxy.listener-${i}.log`), NODE_CRASH_PATTERNS, 0));
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= monitor.stopping(stopAll));
  return {
    name: 'node-proxy',
    url: urls[0] ?? '',
    listenerUrls: urls,
    logs: () => procs.map((p, i) => `--- node-proxy listener ${i} ---\n${p.logs()}`).join('\n'),
    pids: () => monitor.pids(),
    health: () => monitor.health(),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
