// nginx.conf of the NGINX + NJS baseline for several routes (the `multi-pool` feature), the way
// NGINX Gateway Fabric renders one location per HTTPRoute rule: each location sets its pool's
// $epp_host/$epp_port and its own internal path, whose map sends an empty pick to that pool's
// upstream (FailOpen) or the 500 server (FailClose). A rule split across pools draws a pool per
// request with split_clients and rewrites to that pool's internal location; epp.js sends the
// shim the client's $request_uri and the backend gets it too. One server per listener. The shim
// is one process for every pool (as NGF's sidecar), so the pools share its timeout and body limit.
import { listenerCount, planeRoutes, type RouteModel } from '../../core/route-model.ts';
import { failCloseServer, failCloseSocketPath, multiRouteServers, proxyLines, quote, serverLines, sizeK, splitClientsBlocks, splitHostPort } from '../nginx-conf.ts';
import { INTERNAL_PATH, nginxNjsPreamble, type NginxNjsRenderOptions } from './nginx-njs-config.ts';

export interface NginxNjsMultiRenderOptions extends NginxNjsRenderOptions {
  /** One port per listener, by listener index ([0] = listenPort). */
  listenPorts: readonly number[];
}

export function renderNginxNjsMultiConfig(route: RouteModel, o: NginxNjsMultiRenderOptions): string {
  const wd = o.workDir.replace(/\/$/, '');
  const failCloseSock = failCloseSocketPath(wd);
  const entries = planeRoutes(route);
  const ind = '            ';
  const fetchTimeoutMs = Math.max(...entries.map((e) => e.timeoutMs + 2000), 3000);

  const http: string[] = [];
  for (const [k, e] of entries.entries()) {
    const failOpen = e.failureMode === 'open' && e.fallbackEndpoints.length > 0;
    http.push(`    map $inference_workload_endpoint $inference_backend_${k} {\n        ""      ${failOpen ? `eppkit_pool_${k}` : `unix:${failCloseSock}:`};\n        default $inference_workload_endpoint;\n    }`);
    if (e.fallbackEndpoints.length > 0) http.push(`    upstream eppkit_pool_${k} {\n${serverLines(e.fallbackEndpoints)}\n    }`);
  }
  http.push(...splitClientsBlocks(route));

  const servers = multiRouteServers(route, {
    listenHost: o.listenHost,
    listenPorts: o.listenPorts,
    // The whole body in one memory buffer, so epp.js can read it (r.requestText).
    serverHead: (maxBody) => `        client_max_body_size ${sizeK(maxBody)};\n        client_body_buffer_size ${sizeK(maxBody)};\n        client_body_in_single_buffer on;`,
    entryBody: (e, k) => {
      const epp = splitHostPort(e.eppAddress);
      return `${ind}set $epp_host ${quote(epp.host)};\n${ind}set $epp_port ${quote(epp.port)};\n${ind}set $epp_internal_path ${INTERNAL_PATH}_${k};\n${ind}set $epp_shim_url ${quote(o.shimUrl)};\n${ind}js_content epp.pickEndpoint;`;
    },
    internalLocation: (_e, k) => `        location ${INTERNAL_PATH}_${k} {\n${ind}internal;\n${proxyLines(ind, `http://$inference_backend_${k}$request_uri`)}\n        }`,
  });

  return `${nginxNjsPreamble(o, fetchTimeoutMs)}
    # ${entries.length} (route, pool) entries on ${listenerCount(route)} listener(s): eppkit multi-pool.
${http.join('\n\n')}

${failCloseServer(failCloseSock, 'eppkit nginx-njs: no endpoint picked (FailClose)')}

${servers.join('\n\n')}
}
`;
}
