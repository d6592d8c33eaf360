// nginx.conf for several routes (the `multi-pool` feature): one `server` per listener, one
// location per rule (path prefix), each (route, pool) entry with its own EPP directives,
// upstreams and, in the NGF form, its own internal location. A rule split across pools draws a
// pool per request with `split_clients` on $request_id and rewrites to that pool's internal
// location; the backend still gets the client's URI ($request_uri) and the module sends the
// EPP the original :path (r->unparsed_uri). The module needs no change: its directives are per
// location. Both forms, with or without `epp_balancer`, as the single-route renderer.
import { listenerCount, planeRoutes, type RouteModel } from '../../core/route-model.ts';
import { failCloseServer, failCloseSocketPath, hostPort, multiRouteServers, proxyLines, quote, serverLines, sizeK, splitClientsBlocks, splitHostPort } from '../nginx-conf.ts';
import { eppDirectives, INTERNAL_PATH, nginxEppPreamble, type NginxEppRenderOptions, UPSTREAM_KEEPALIVE } from './nginx-epp-config.ts';

export interface NginxEppMultiRenderOptions extends NginxEppRenderOptions {
  /** One port per listener, by listener index ([0] = listenPort). */
  listenPorts: readonly number[];
}

export function renderNginxEppMultiConfig(route: RouteModel, o: NginxEppMultiRenderOptions): string {
  const wd = o.workDir.replace(/\/$/, '');
  const form = o.form ?? 'ngf';
  const balancer = o.balancer ?? false;
  const failCloseSock = failCloseSocketPath(wd);
  const entries = planeRoutes(route);
  const ind = '            ';

  // http level: per entry its upstreams (and NGF map); per split rule its split_clients.
  const http: string[] = [];
  for (const [k, e] of entries.entries()) {
    const pool = e.fallbackEndpoints.length > 0;
    const failOpen = e.failureMode === 'open' && pool;
    const keepalive = `        keepalive ${UPSTREAM_KEEPALIVE};`;
    if (balancer) http.push(`    upstream eppkit_pick_${k} {\n        epp_balancer;\n${failOpen ? serverLines(e.fallbackEndpoints) : `        server unix:${failCloseSock};`}\n${keepalive}\n    }`);
    else {
      if (form === 'ngf')
        http.push(`    map $inference_workload_endpoint $inference_backend_${k} {\n        ""      ${failOpen ? `eppkit_pool_${k}` : `unix:${failCloseSock}:`};\n        default $inference_workload_endpoint;\n    }`);
      if (pool) http.push(`    upstream eppkit_pool_${k} {\n${serverLines(e.fallbackEndpoints)}\n${keepalive}\n    }`);
    }
  }
  http.push(...splitClientsBlocks(route));

  const servers = multiRouteServers(route, {
    listenHost: o.listenHost,
    listenPorts: o.listenPorts,
    serverHead: (maxBody) => `        client_max_body_size ${o.clientMaxBodySize ?? sizeK(maxBody)};\n        client_body_buffer_size ${o.bodyBufferSize ?? '16k'};`,
    entryBody: (e, k, viaRewrite) => {
      if (form === 'ngf') {
        const epp = splitHostPort(e.eppAddress);
        return `${ind}set $epp_host ${quote(epp.host)};\n${ind}set $epp_port ${quote(epp.port)};\n${ind}set $epp_internal_path ${INTERNAL_PATH}_${k};\n${eppDirectives(e, ind)}\n${ind}epp_get_endpoint on;`;
      }
      const failOpen = e.failureMode === 'open' && e.fallbackEndpoints.length > 0;
      // After a rewrite the URI is the pool location's: send the client's ($request_uri).
      const target = balancer ? `http://eppkit_pick_${k}${viaRewrite ? '$request_uri' : ''}` : `http://$inference_workload_endpoint${viaRewrite ? '$request_uri' : ''}`;
      return `${ind}epp_endpoint ${hostPort(e.eppAddress)};\n${failOpen && !balancer ? `${ind}epp_default_upstream eppkit_pool_${k};\n` : ''}${eppDirectives(e, ind)}\n${proxyLines(ind, target, balancer)}`;
    },
    ...(form === 'ngf'
      ? {
          internalLocation: (e: RouteModel, k: number) =>
            `        location ${INTERNAL_PATH}_${k} {\n${ind}internal;\n${e.responseProcessing ? `${ind}epp_report_served on;\n` : ''}${proxyLines(ind, `http://${balancer ? `eppkit_pick_${k}` : `$inference_backend_${k}`}$request_uri`, balancer)}\n        }`,
        }
      : {}),
  });

  return `${nginxEppPreamble(o, form)}
    # ${entries.length} (route, pool) entries on ${listenerCount(route)} listener(s): eppkit multi-pool.
${http.join('\n\n')}

${failCloseServer(failCloseSock, 'eppkit nginx-epp: no endpoint picked')}

${servers.join('\n\n')}
}
`;
}
