// Renders the nginx.conf for Debian's nginx + ngx_http_rust_epp_module from the route model.
// Two forms, both documented in proxies/nginx-epp/README.md:
// - 'ngf' (default): NGINX Gateway Fabric's shape. The client location sets $epp_host,
//   $epp_port, $epp_internal_path and runs `epp_get_endpoint on;`; the module redirects to the
//   internal location, where a map turns an empty pick (FailOpen) into the pool's upstream.
// - 'direct': `epp_endpoint` + `proxy_pass http://$inference_workload_endpoint` in one location.
// With `balancer: true` both forms proxy to `upstream eppkit_pick { epp_balancer; ... }` instead:
// the module hands nginx the EPP's whole list ($epp_endpoints) so `proxy_next_upstream` tries the
// fallbacks in order, and a request without a list (fail-open) round-robins the upstream's
// `server` lines — the pool, or the fail-close socket when there is no pool.
import type { RouteModel } from '../../core/route-model.ts';
import { failCloseServer, failCloseSocketPath, hostPort, quote, serverLines, sizeK, splitHostPort } from '../nginx-conf.ts';

export type NginxEppForm = 'ngf' | 'direct';

export interface NginxEppRenderOptions {
  /** Absolute directory: logs, pid, temp files. nginx runs with `-p workDir`. */
  workDir: string;
  listenHost: string;
  listenPort: number;
  /** Absolute path of ngx_http_rust_epp_module's .so. */
  modulePath: string;
  form?: NginxEppForm;
  /** Proxy through `upstream { epp_balancer; }` (EPP fallback list honoured). Default false. */
  balancer?: boolean;
  /** Emit `user root;` (only when the master runs as root, so workers can write workDir). */
  runAsRoot: boolean;
  /** client_body_buffer_size: bodies above it go to a temp file. Default 16k (nginx's default). */
  bodyBufferSize?: string;
  /** client_max_body_size. Default the route's maxBodyBytes (nginx refuses larger with 413 itself). */
  clientMaxBodySize?: string;
  /** Buffer the access log (benchmarks); default off, so each line is on disk when the response is. */
  bufferedAccessLog?: boolean;
  /** worker_processes. Default 1. */
  workers?: number;
  /** worker_connections. Default 4096. */
  workerConnections?: number;
}

export const INTERNAL_PATH = '/_eppkit_inference';

// Idle backend connections each worker keeps (nginx's `keepalive`, after `epp_balancer` so it wraps
// the module's peer selection): without it every request opens a new TCP connection to the pick.
// 256, not nginx's usual 64: the C/D bench's bursts need ~170 at once, and with 64 nginx closed
// and reopened the rest (3 of 6 runs had a ~1.07 s request: a SYN retransmit; none of 3 with 256).
export const UPSTREAM_KEEPALIVE = 256;

/** Directives shared by both forms. */
export function eppDirectives(route: RouteModel, indent: string): string {
  const lines = [
    `epp_timeout_ms ${route.timeoutMs};`,
    `epp_failure_mode_allow ${route.failureMode === 'open' ? 'on' : 'off'};`,
    `epp_body_mode ${route.bodyMode};`,
    `epp_max_body_size ${sizeK(route.maxBodyBytes)};`,
  ];
  if (route.eppTls) {
    lines.push('epp_tls on;', `epp_tls_verify ${route.eppTls.insecureSkipVerify ? 'off' : 'on'};`);
    if (route.eppTls.caFile) lines.push(`epp_tls_ca ${quote(route.eppTls.caFile)};`);
    if (route.eppTls.serverName) lines.push(`epp_tls_server_name ${quote(route.eppTls.serverName)};`);
  }
  if (route.responseProcessing) lines.push('epp_report_served on;');
  if (route.allow.length > 0) lines.push(`epp_allow ${route.allow.map(quote).join(' ')};`);
  if (route.subsetHint && route.subsetHint.length > 0) lines.push(`epp_subset_hint ${quote(route.subsetHint.join(','))};`);
  if (route.bbr) {
    lines.push('epp_bbr on;', `epp_bbr_header ${quote(route.bbr.header)};`, `epp_bbr_max_body_size ${sizeK(route.bbr.maxBodyBytes)};`);
    if (route.bbr.requireModel) lines.push('epp_bbr_require_model on;');
  }
  return lines.map((l) => `${indent}${l}`).join('\n');
}

/** Everything before the http block's upstreams: module, workers, logs, temp paths. */
export function nginxEppPreamble(o: NginxEppRenderOptions, form: string): string {
  const wd = o.workDir.replace(/\/$/, '');
  return `# Rendered by eppkit (proxies/nginx-epp, form ${form}): endpoint picking by the native Rust module.
load_module ${o.modulePath};
${o.runAsRoot ? 'user root;\n' : ''}worker_processes ${o.workers ?? 1};
pid ${wd}/nginx.pid;
error_log ${wd}/error.log info;

events {
    worker_connections ${o.workerConnections ?? 4096};
}

http {
    log_format eppkit '$remote_addr "$request" $status $body_bytes_sent epp=$epp_status '
                      'endpoint="$inference_workload_endpoint" upstream="$upstream_addr" rt=$request_time '
                      'bbr=$epp_bbr_status model="$epp_model"';
    access_log ${wd}/access.log eppkit${o.bufferedAccessLog ? ' buffer=32k flush=200ms' : ''};
    client_body_temp_path ${wd}/client_body_temp;
    proxy_temp_path ${wd}/proxy_temp;
    fastcgi_temp_path ${wd}/fastcgi_temp;
    uwsgi_temp_path ${wd}/uwsgi_temp;
    scgi_temp_path ${wd}/scgi_temp;
`;
}

export function renderNginxEppConfig(route: RouteModel, o: NginxEppRenderOptions): string {
  const wd = o.workDir.replace(/\/$/, '');
  const form = o.form ?? 'ngf';
  const failCloseSock = failCloseSocketPath(wd);
  const pool = route.fallbackEndpoints.length > 0;
  const failOpen = route.failureMode === 'open' && pool;
  const epp = splitHostPort(route.eppAddress);
  const prefix = route.pathPrefix || '/';
  const listen = o.listenHost.includes(':') ? `[${o.listenHost}]:${o.listenPort}` : `${o.listenHost}:${o.listenPort}`;
  const indent = '            ';
  const balancer = o.balancer ?? false;
  // Connect errors and timeouts move on to the EPP's next entry (nginx's default, said aloud).
  const nextUpstream = balancer ? `${indent}proxy_next_upstream error timeout;\n` : '';

  const clientLocation =
    form === 'ngf'
      ? `        location ${prefix} {
            set $epp_host ${quote(epp.host)};
            set $epp_port ${quote(epp.port)};
            set $epp_internal_path ${INTERNAL_PATH};
${eppDirectives(route, indent)}
            epp_get_endpoint on;
        }

        location ${INTERNAL_PATH} {
            internal;
${route.responseProcessing ? `${indent}epp_report_served on;\n` : ''}            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
${nextUpstream}            proxy_pass http://${balancer ? 'eppkit_pick' : '$inference_backend'}$request_uri;
        }`
      : `        location ${prefix} {
            epp_endpoint ${hostPort(route.eppAddress)};
${failOpen && !balancer ? `${indent}epp_default_upstream eppkit_pool;\n` : ''}${eppDirectives(route, indent)}
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
${nextUpstream}            proxy_pass http://${balancer ? 'eppkit_pick' : '$inference_workload_endpoint'};
        }`;

  return `${nginxEppPreamble(o, form)}
${
  balancer
    ? `    # The EPP's list in order ($epp_endpoints); without one (FailOpen) the servers below.
    upstream eppkit_pick {
        epp_balancer;
${failOpen ? serverLines(route.fallbackEndpoints) : `        server unix:${failCloseSock};`}
        keepalive ${UPSTREAM_KEEPALIVE};
    }
`
    : `    # NGF's template: no endpoint from the EPP -> FailOpen: the pool; otherwise a 500.
    map $inference_workload_endpoint $inference_backend {
        ""      ${failOpen ? 'eppkit_pool' : `unix:${failCloseSock}:`};
        default $inference_workload_endpoint;
    }
`
}${
  pool && !balancer
    ? `
    upstream eppkit_pool {
${serverLines(route.fallbackEndpoints)}
        keepalive ${UPSTREAM_KEEPALIVE};
    }
`
    : ''
}
${failCloseServer(failCloseSock, 'eppkit nginx-epp: no endpoint picked')}

    server {
        listen ${listen};
        client_max_body_size ${o.clientMaxBodySize ?? sizeK(route.maxBodyBytes)};
        client_body_buffer_size ${o.bodyBufferSize ?? '16k'};

${clientLocation}
${prefix !== '/' ? `
        location / {
            return 404;
        }
` : ''}    }
}
`;
}
