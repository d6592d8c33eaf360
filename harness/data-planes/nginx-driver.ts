// Drives Debian's nginx with the native Rust EPP module (proxies/nginx-epp): renders nginx.conf
// from the route model (NGF form by default, or the direct form), starts
// `/usr/sbin/nginx -p <workDir> -c <conf> -g 'daemon off; master_process on;'` on a free
// loopback port, with error log, access log ($epp_status) and pid file in workDir — as a local
// process, or in the eppkit/nginx-epp image (`--runtime docker`, host network).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isMultiRoute, listenerCount, planeRoutes, type RouteModel } from '../../core/route-model.ts';
import { renderNginxEppConfig, type NginxEppForm, type NginxEppRenderOptions } from '../../proxies/nginx-epp/nginx-epp-config.ts';
import { renderNginxEppMultiConfig } from '../../proxies/nginx-epp/nginx-epp-multi-config.ts';
import { defaultNginxModulePath } from '../build/nginx-module-build.ts';
import { CONTAINER_PATHS, IMAGES_BY_ROLE, containerAvailable } from '../containers/image-roles.ts';
import { EXT_PROC_CORE_FEATURES, type Availability, type DataPlaneDriver, type DriverContext, type Feature, type Runtime, type StartedDataPlane } from './data-plane-driver.ts';
import { readTail, startNginx } from './start-nginx.ts';
import { nginxBin } from '../../core/env.ts';

export interface NginxDriverOptions {
  /** Default EPPKIT_NGINX_BIN or /usr/sbin/nginx. */
  nginxBin?: string;
  /** Default EPPKIT_NGINX_MODULE or the path `eppkit build nginx` prints. */
  modulePath?: string;
  /** Config form. Default 'ngf'. */
  form?: NginxEppForm;
  /** Proxy through `upstream { epp_balancer; }` so the EPP's fallback list is tried in order. Default true. */
  balancer?: boolean;
  /** client_body_buffer_size (bodies above it go to temp files). Default 16k. */
  bodyBufferSize?: string;
  /** client_max_body_size override (default: the route's maxBodyBytes). */
  clientMaxBodySize?: string;
  /** Buffer the access log (benchmarks). Default false. */
  bufferedAccessLog?: boolean;
  /** How long nginx may take to listen. Default 15 s. */
  startTimeoutMs?: number;
}

// 'fallback-list' holds with the balancer form (the default): the module's `epp_balancer`
// upstream hands nginx the EPP's whole list, and proxy_next_upstream tries it in order.
const NGINX_FEATURES: Feature[] = [
  ...EXT_PROC_CORE_FEATURES,
  'fallback-list',
  'metadata-endpoint',
  'served-endpoint',
  'endpoint-validation',
  'tls',
  'client-abort',
  'ipv6-endpoint',
  'allowlist',
  'subset-hint',
  'bbr',
  'multi-pool',
];

export interface StartedNginx extends StartedDataPlane {
  readonly workDir: string;
  /** Master pid (local runtime; undefined in a container). */
  readonly pid: number | undefined;
}

export class NginxDriver implements DataPlaneDriver {
  readonly name: string;
  readonly description: string;
  readonly features: ReadonlySet<Feature>;
  private readonly opts: NginxDriverOptions;

  constructor(opts: NginxDriverOptions = {}) {
    this.opts = opts;
    this.features = new Set(opts.balancer === false ? NGINX_FEATURES.filter((f) => f !== 'fallback-list') : NGINX_FEATURES);
    this.name = opts.form === 'direct' ? 'nginx-direct' : 'nginx';
    this.description = `NGINX 1.22 + native Rust EPP module (non-blocking, ${opts.form === 'direct' ? 'direct epp_endpoint form' : 'NGF epp_get_endpoint form'}), a local process or the eppkit/nginx-epp image`;
  }

  nginxBin(): string {
    return this.opts.nginxBin ?? nginxBin();
  }

  modulePath(): string {
    return resolve(this.opts.modulePath ?? defaultNginxModulePath());
  }

  async available(runtime: Runtime): Promise<Availability> {
    if (runtime === 'docker') return containerAvailable(IMAGES_BY_ROLE.nginxEpp);
    const v = spawnSync(this.nginxBin(), ['-v'], { encoding: 'utf8' });
    if (v.error || v.status !== 0) return { ok: false, reason: `nginx not found at ${this.nginxBin()}; run: bash scripts/setup-system.sh (apt nginx nginx-dev)` };
    if (!existsSync(this.modulePath())) {
      return { ok: false, reason: `the EPP module is not built (${this.modulePath()} missing); run: eppkit build nginx (or set EPPKIT_NGINX_MODULE)` };
    }
    return { ok: true };
  }

  async start(route: RouteModel, ctx: DriverContext): Promise<StartedNginx> {
    const workDir = resolve(ctx.workDir);
    mkdirSync(workDir, { recursive: true });
    const docker = ctx.runtime === 'docker';
    // Files the config names outside workDir, mounted at the same path in a container.
    const binds = [...new Set(planeRoutes(route).flatMap((r) => (r.eppTls?.caFile ? [resolve(r.eppTls.caFile)] : [])))];
    const multi = isMultiRoute(route);
    const { proc, port, extraPorts, monitor } = await startNginx(ctx, {
      workDir,
      image: IMAGES_BY_ROLE.nginxEpp,
      nginxBin: this.nginxBin(),
      masterProcess: true,
      binds,
      startTimeoutMs: this.opts.startTimeoutMs,
      extraPorts: multi ? listenerCount(route) - 1 : 0,
      renderConfig: (listenPort, extra) => {
        const o: NginxEppRenderOptions = {
          workDir,
          listenHost: ctx.host,
          listenPort,
          modulePath: docker ? CONTAINER_PATHS.nginxEppModule : this.modulePath(),
          form: this.opts.form,
          balancer: this.opts.balancer ?? true,
          // The image runs as root; locally only when eppkit does.
          runAsRoot: docker || process.getuid?.() === 0,
          bodyBufferSize: this.opts.bodyBufferSize,
          clientMaxBodySize: this.opts.clientMaxBodySize,
          bufferedAccessLog: this.opts.bufferedAccessLog,
        };
        return multi ? renderNginxEppMultiConfig(route, { ...o, listenPorts: [listenPort, ...extra] }) : renderNginxEppConfig(route, o);
      },
    });
    const urlOf = (p: number): string => `http://${ctx.host.includes(':') ? `[${ctx.host}]` : ctx.host}:${p}`;
    const url = urlOf(port);
    let stopped: Promise<void> | undefined;
    const stop = (): Promise<void> => {
      stopped ??= monitor.stopping(() => proc.stop(5000));
      return stopped;
    };
    return {
      name: this.name,
      url,
      ...(multi ? { listenerUrls: [url, ...extraPorts.map(urlOf)] } : {}),
      workDir,
      pid: proc.pid,
      pids: () => monitor.pids(),
      health: () => monitor.health(),
      logs: () =>
        [
          `--- nginx ---\n${proc.logs()}`,
          `--- nginx error.log ---\n${readTail(join(workDir, 'error.log'), 64 * 1024)}`,
          `--- nginx access.log ---\n${readTail(join(workDir, 'access.log'), 32 * 1024)}`,
        ].join('\n'),
      stop,
      [Symbol.asyncDispose]: stop,
    };
  }
}

export const nginxDriver = new NginxDriver();
export const nginxDirectDriver = new NginxDriver({ form: 'direct' });
