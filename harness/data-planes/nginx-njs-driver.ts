// Drives the NGINX + NJS baseline (NGINX Gateway Fabric's way of asking an EPP): Debian's
// nginx with ngx_http_js_module running proxies/nginx-njs/epp.js, plus the HTTP-to-ext_proc
// shim `eppkit node-proxy --shim` as a child process on a free port.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EppkitError } from '../../core/errors.ts';
import { isMultiRoute, listenerCount, planeRoutes, type RouteModel } from '../../core/route-model.ts';
import { renderNginxNjsConfig, type NginxNjsRenderOptions } from '../../proxies/nginx-njs/nginx-njs-config.ts';
import { renderNginxNjsMultiConfig } from '../../proxies/nginx-njs/nginx-njs-multi-config.ts';
import { CONTAINER_PATHS, IMAGES_BY_ROLE, containerAvailable } from '../containers/image-roles.ts';
import { eppkitInvocation, launch, type Launched } from '../launch/launch.ts';
import { LISTENING } from './node-proxy-driver.ts';
import type { Availability, DataPlaneDriver, DriverContext, Feature, Runtime, StartedDataPlane } from './data-plane-driver.ts';
import { freePort } from '../../core/net.ts';
import { readTail, startNginx } from './start-nginx.ts';
import { NODE_CRASH_PATTERNS } from './plane-health.ts';
import { env, nginxBin } from '../../core/env.ts';

export interface NginxNjsDriverOptions {
  /** nginx binary. Default EPPKIT_NGINX_BIN or /usr/sbin/nginx. */
  nginxBin?: string;
  /** NJS module. Default EPPKIT_NJS_MODULE or /usr/lib/nginx/modules/ngx_http_js_module.so. */
  njsModule?: string;
  startTimeoutMs?: number;
}

const EPP_JS = fileURLToPath(new URL('../../proxies/nginx-njs/epp.js', import.meta.url));
const SHIM_MODULE = fileURLToPath(new URL('../../proxies/node-proxy/node-proxy-command.ts', import.meta.url));

// What NGF's integration can do. It cannot: relay an ImmediateResponse (the shim's error
// status only empties the pick, so it becomes the failure mode's outcome), stream bodies
// (NJS reads the whole body first), tell a timeout from another failure (FailClose is
// always 500), use a comma-separated fallback list (nginx fails on it), apply other header
// mutations, report the served endpoint, or skip the body (the shim always sends it, so
// 'body-none' is not claimed). Garbage picks are refused by the shim, which validates them.
// Several routes and pools ('multi-pool') as NGF renders HTTPRoute rules: one location per rule.
const NGINX_NJS_FEATURES: Feature[] = ['body-buffered', 'fail-open', 'fail-close', 'timeout', 'endpoint-validation', 'ipv6-endpoint', 'multi-pool'];

/**
 * One throw-away exchange against a closed port, so the shim's first real request does not pay
 * its cold start (module JIT, first gRPC channel) inside the EPP's 200 ms message timeout. It
 * never reaches the mock EPP, so no journal entry appears.
 */
async function warmShim(shimUrl: string, host: string): Promise<void> {
  const closedPort = await freePort(host);
  try {
    const res = await fetch(`${shimUrl}/eppkit-warmup`, {
      method: 'POST',
      headers: { 'x-epp-host': host, 'x-epp-port': String(closedPort), 'content-type': 'text/plain' },
      body: 'warm-up',
      signal: AbortSignal.timeout(3000),
    });
    await res.arrayBuffer();
  } catch {
    // A slow or failed warm-up only costs the first request its head start.
  }
}

export class NginxNjsDriver implements DataPlaneDriver {
  readonly name = 'nginx-njs';
  readonly description = "NGINX 1.22 + NJS baseline as NGINX Gateway Fabric does it (epp.js + the eppkit node-proxy shim); local processes or the eppkit/nginx-njs and eppkit/node images";
  readonly features: ReadonlySet<Feature> = new Set(NGINX_NJS_FEATURES);
  private readonly opts: NginxNjsDriverOptions;

  constructor(opts: NginxNjsDriverOptions = {}) {
    this.opts = opts;
  }

  private nginxBin(): string {
    return this.opts.nginxBin ?? nginxBin();
  }

  private njsModule(): string {
    return this.opts.njsModule ?? env().EPPKIT_NJS_MODULE ?? '/usr/lib/nginx/modules/ngx_http_js_module.so';
  }

  async available(runtime: Runtime): Promise<Availability> {
    if (runtime === 'docker') {
      for (const image of [IMAGES_BY_ROLE.nginxNjs, IMAGES_BY_ROLE.eppkit]) {
        const a = await containerAvailable(image);
        if (!a.ok) return a;
      }
      return { ok: true };
    }
    const v = spawnSync(this.nginxBin(), ['-v'], { encoding: 'utf8' });
    if (v.error || v.status !== 0) return { ok: false, reason: `nginx not found at ${this.nginxBin()}; run: bash scripts/setup-system.sh (apt nginx)` };
    if (!existsSync(this.njsModule())) {
      return { ok: false, reason: `NJS module not found at ${this.njsModule()}; run: bash scripts/setup-system.sh (apt libnginx-mod-http-js)` };
    }
    if (!existsSync(SHIM_MODULE)) return { ok: false, reason: 'proxies/node-proxy (the shim) is not in this checkout' };
    return { ok: true };
  }

  unsupportedRoute(route: RouteModel): string | undefined {
    const entries = planeRoutes(route);
    for (const e of entries.slice(1)) {
      const why = this.unsupportedRoute({ ...e, routes: undefined });
      if (why) return why;
    }
    // NGF's shim is one sidecar for every pool: one EPP timeout and one body limit.
    if (new Set(entries.map((e) => e.timeoutMs)).size > 1) return "NGF's shim is one sidecar with one EPP timeout: pools with different timeouts";
    if (new Set(entries.map((e) => e.maxBodyBytes)).size > 1) return "NGF's shim is one sidecar with one body limit: pools with different limits";
    if (route.bodyMode === 'streamed') return 'NJS reads the whole body before asking the EPP: no streamed body mode';
    if (route.bodyMode === 'none') return 'the NGF shim always sends the whole body to the EPP: no headers-only mode';
    if (route.eppTls) return 'the NGF shim talks plaintext gRPC to the EPP';
    if (route.allow.length > 0) return 'NGF has no endpoint allowlist';
    if (route.responseProcessing) return 'NGF does not send response headers to the EPP';
    if (route.subsetHint) return 'NGF does not send the subset hint';
    return undefined;
  }

  async start(route: RouteModel, ctx: DriverContext): Promise<StartedDataPlane> {
    const avail = await this.available(ctx.runtime);
    if (!avail.ok) throw new EppkitError('EPPKIT_TOOL_MISSING', { tool: 'nginx-njs', reason: avail.reason ?? 'not available' });
    const workDir = resolve(ctx.workDir);
    mkdirSync(workDir, { recursive: true });
    const shim = await launch(
      { ...ctx, workDir },
      {
        what: 'node-proxy shim',
        ...eppkitInvocation([
          'node-proxy', '--shim',
          '--listen', `${ctx.host}:0`,
          '--timeout-ms', String(route.timeoutMs),
          '--max-body-bytes', String(route.maxBodyBytes),
        ]),
        waitFor: LISTENING,
        startupTimeoutMs: 15_000,
        logFile: join(workDir, 'shim.log'),
        env: { NO_COLOR: '1' },
      },
    );
    let nginx: Launched | undefined;
    try {
      const shimUrl = (shim.ready[1] ?? '').replace(/\/$/, '');
      await warmShim(shimUrl, ctx.host);
      copyFileSync(EPP_JS, join(workDir, 'epp.js'));
      const started = await this.startNginx(route, { ...ctx, workDir }, shimUrl);
      nginx = started.proc;
      const nginxProc = started.proc;
      // The shim is part of this plane: its crash is the plane's crash.
      const monitor = started.monitor.withProcess('node-proxy shim', shim).withLogFile('node-proxy shim', join(workDir, 'shim.log'), NODE_CRASH_PATTERNS, 0);
      const urlOf = (p: number): string => `http://${ctx.host.includes(':') ? `[${ctx.host}]` : ctx.host}:${p}`;
      const url = urlOf(started.port);
      let stopped: Promise<void> | undefined;
      const stop = (): Promise<void> => {
        stopped ??= monitor.stopping(() => Promise.all([nginxProc.stop(5000), shim.stop(5000)])).then(() => undefined);
        return stopped;
      };
      return {
        name: this.name,
        url,
        pids: () => monitor.pids(),
        health: () => monitor.health(),
        ...(isMultiRoute(route) ? { listenerUrls: [url, ...started.extraPorts.map(urlOf)] } : {}),
        logs: () =>
          [
            `--- nginx ---\n${nginxProc.logs()}`,
            `--- nginx error.log ---\n${readTail(join(workDir, 'error.log'), 64 * 1024)}`,
            `--- nginx access.log ---\n${readTail(join(workDir, 'access.log'), 32 * 1024)}`,
            `--- shim ---\n${shim.logs()}`,
          ].join('\n'),
        stop,
        [Symbol.asyncDispose]: stop,
      };
    } catch (e) {
      await Promise.all([nginx?.kill(), shim.kill()]);
      throw e;
    }
  }

  private startNginx(route: RouteModel, ctx: DriverContext, shimUrl: string): ReturnType<typeof startNginx> {
    const docker = ctx.runtime === 'docker';
    const multi = isMultiRoute(route);
    return startNginx(ctx, {
      extraPorts: multi ? listenerCount(route) - 1 : 0,
      workDir: ctx.workDir,
      image: IMAGES_BY_ROLE.nginxNjs,
      nginxBin: this.nginxBin(),
      startTimeoutMs: this.opts.startTimeoutMs,
      renderConfig: (listenPort, extra) => {
        const o: NginxNjsRenderOptions = {
          workDir: ctx.workDir,
          listenHost: ctx.host,
          listenPort,
          shimUrl,
          njsModule: docker ? CONTAINER_PATHS.nginxNjsModule : this.njsModule(),
          // The images run as root; locally only when eppkit does.
          runAsRoot: docker || process.getuid?.() === 0,
        };
        return multi ? renderNginxNjsMultiConfig(route, { ...o, listenPorts: [listenPort, ...extra] }) : renderNginxNjsConfig(route, o);
      },
    });
  }
}

export const nginxNjsDriver = new NginxNjsDriver();
