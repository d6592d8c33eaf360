// Renders the nginx.conf of the NGINX + NJS baseline (NGINX Gateway Fabric's integration,
// facts file §4) from the route model: the client location runs epp.js, which asks the shim
// for an endpoint and redirects internally; a map turns an empty pick into the pool's
// upstream (FailOpen) or a server that answers 500 (FailClose).
import type { RouteModel } from '../../core/route-model.ts';
import { failCloseServer, failCloseSocketPath, quote, serverLines, sizeK, splitHostPort } from '../nginx-conf.ts';

export interface NginxNjsRenderOptions {
  /** Absolute directory: logs, pid, temp files, epp.js. nginx runs with `-p workDir`. */
  workDir: string;
  /** Listen address of the client-facing server. */
  listenHost: string;
  listenPort: number;
  /** The shim's base URL, e.g. http://127.0.0.1:41234 */
  shimUrl: string;
  /** Path of the ngx_http_js_module shared object. */
  njsModule: string;
  /** Emit `user root;` (only meaningful, and only accepted silently, when the master runs as root). */
  runAsRoot: boolean;
}

export const INTERNAL_PATH = '/_eppkit_inference';

/** Everything before the http block's maps: modules, workers, logs, temp paths, NJS settings. */
export function nginxNjsPreamble(o: NginxNjsRenderOptions, fetchTimeoutMs: number): string {
  const wd = o.workDir.replace(/\/$/, '');
  return `# Rendered by eppkit (proxies/nginx-njs): NGINX + NJS endpoint picking as NGINX Gateway Fabric does it.
load_module ${o.njsModule};
${o.runAsRoot ? 'user root;\n' : ''}worker_processes 1;
pid ${wd}/nginx.pid;
error_log ${wd}/error.log info;

events {
    worker_connections 1024;
}

http {
    access_log ${wd}/access.log;
    client_body_temp_path ${wd}/client_body_temp;
    proxy_temp_path ${wd}/proxy_temp;
    fastcgi_temp_path ${wd}/fastcgi_temp;
    uwsgi_temp_path ${wd}/uwsgi_temp;
    scgi_temp_path ${wd}/scgi_temp;

    js_path ${quote(wd)};
    js_import epp from epp.js;
    js_var $inference_workload_endpoint;
    js_fetch_timeout ${fetchTimeoutMs}ms;
    js_fetch_buffer_size 16k;
    js_fetch_max_response_buffer_size 1m;
`;
}

export function renderNginxNjsConfig(route: RouteModel, o: NginxNjsRenderOptions): string {
  const wd = o.workDir.replace(/\/$/, '');
  const failCloseSock = failCloseSocketPath(wd);
  const failOpen = route.failureMode === 'open' && route.fallbackEndpoints.length > 0;
  const eppParts = splitHostPort(route.eppAddress);
  const prefix = route.pathPrefix || '/';
  // The shim's answer arrives well within the EPP timeout; this only backs up a shim that hangs.
  const fetchTimeoutMs = Math.max(route.timeoutMs + 2000, 3000);
  const listen = o.listenHost.includes(':') ? `[${o.listenHost}]:${o.listenPort}` : `${o.listenHost}:${o.listenPort}`;

  return `${nginxNjsPreamble(o, fetchTimeoutMs)}
    # NGF's template: no endpoint from the EPP -> FailOpen: the pool; FailClose: a 500.
    map $inference_workload_endpoint $inference_backend {
        ""      ${failOpen ? 'eppkit_pool' : `unix:${failCloseSock}:`};
        default $inference_workload_endpoint;
    }
${
  route.fallbackEndpoints.length > 0
    ? `
    upstream eppkit_pool {
${serverLines(route.fallbackEndpoints)}
    }
`
    : ''
}
${failCloseServer(failCloseSock, 'eppkit nginx-njs: no endpoint picked (FailClose)')}

    server {
        listen ${listen};
        # The whole body in one memory buffer, so epp.js can read it (r.requestText).
        client_max_body_size ${sizeK(route.maxBodyBytes)};
        client_body_buffer_size ${sizeK(route.maxBodyBytes)};
        client_body_in_single_buffer on;

        location ${prefix} {
            set $epp_host ${quote(eppParts.host)};
            set $epp_port ${quote(eppParts.port)};
            set $epp_internal_path ${INTERNAL_PATH};
            set $epp_shim_url ${quote(o.shimUrl)};
            js_content epp.pickEndpoint;
        }

${prefix !== '/' ? `        location / {
            return 404;
        }

` : ''}        location ${INTERNAL_PATH} {
            internal;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_pass http://$inference_backend$request_uri;
        }
    }
}
`;
}
