// nginx.conf of the NGINX + NJS baseline for several routes (the `multi-pool` feature), the way
// NGINX Gateway Fabric renders one location per HTTPRoute rule: each location sets its pool's
// $epp_host/$epp_port and its own internal path, whose map sends an empty pick to that pool's
// upstream (FailOpen) or the 500 server (FailClose). A rule split across pools draws a pool per
// request with split_clients and rewrites to that pool's internal location; epp.js sends the
// shim the client's $request_uri and the backend gets it too. One server per listener. The shim
// is one process for every pool (as NGF's sidecar), so the pools share its timeout and body limit.
import { byLongestPrefix, listenerCount, planeRoutes, routeRules, weightPercents, type RouteModel } from '../../core/route-model.ts';
import { failCloseServer, failCloseSocketPath, quote, serverLines, sizeK, splitHostPort } from '../nginx-conf.ts';
import { INTERNAL_PATH, nginxNjsPreamble, type NginxNjsRenderOptions } from './nginx-njs-config.ts';

export interface NginxNjsMultiRenderOptions extends NginxNjsRenderOptions {
  /** One port per listener, by listener index ([0] = listenPort). */
  listenPorts: readonly number[];
}

const POOL_PATH = '/_eppkit_pool_';

export function renderNginxNjsMultiConfig(route: RouteModel, o: NginxNjsMultiRenderOptions): string {
  const wd = o.workDir.replace(/\/$/, '');
  const failCloseSock = failCloseSocketPath(wd);
  const entries = planeRoutes(route);
  const index = new Map(entries.map((e, k) => [e, k]));
  const ind = '            ';
  const fetchTimeoutMs = Math.max(...entries.map((e) => e.timeoutMs + 2000), 3000);

  const http: string[] = [];
  for (const [k, e] of entries.entries()) {
    const failOpen = e.failureMode === 'open' && e.fallbackEndpoints.length > 0;
    http.push(`    map $inference_workload_endpoint $inference_backend_${k} {\n        ""      ${failOpen ? `eppkit_pool_${k}` : `unix:${failCloseSock}:`};\n        default $inference_workload_endpoint;\n    }`);
    if (e.fallbackEndpoints.length > 0) http.push(`    upstream eppkit_pool_${k} {\n${serverLines(e.fallbackEndpoints)}\n    }`);
  }
  const rules = routeRules(route);
  rules.forEach((rule, r) => {
    if (rule.pools.length < 2) return;
    const pct = weightPercents(rule.pools);
    const lines = rule.pools.map((p, j) => `        ${j === rule.pools.length - 1 ? '*' : `${pct[j]}%`} ${POOL_PATH}${index.get(p)};`);
    http.push(`    # Rule ${rule.pathPrefix}: a pool per request, by weight.\n    split_clients "\${request_id}" $eppkit_split_${r} {\n${lines.join('\n')}\n    }`);
  });

  const entryBody = (e: RouteModel, k: number): string => {
    const epp = splitHostPort(e.eppAddress);
    return `${ind}set $epp_host ${quote(epp.host)};\n${ind}set $epp_port ${quote(epp.port)};\n${ind}set $epp_internal_path ${INTERNAL_PATH}_${k};\n${ind}set $epp_shim_url ${quote(o.shimUrl)};\n${ind}js_content epp.pickEndpoint;`;
  };

  const servers: string[] = [];
  for (let l = 0; l < listenerCount(route); l++) {
    const mine = byLongestPrefix(rules.filter((x) => x.listener === l));
    const locs: string[] = [];
    for (const rule of mine) {
      const r = rules.indexOf(rule);
      if (rule.pools.length === 1) {
        const e = rule.pools[0]!;
        locs.push(`        location ${rule.pathPrefix} {\n${entryBody(e, index.get(e)!)}\n        }`);
        continue;
      }
      locs.push(`        location ${rule.pathPrefix} {\n${ind}rewrite ^ $eppkit_split_${r} last;\n        }`);
      for (const e of rule.pools) locs.push(`        location = ${POOL_PATH}${index.get(e)} {\n${ind}internal;\n${entryBody(e, index.get(e)!)}\n        }`);
    }
    for (const rule of mine)
      for (const e of rule.pools) {
        const k = index.get(e)!;
        locs.push(
          `        location ${INTERNAL_PATH}_${k} {\n${ind}internal;\n${ind}proxy_http_version 1.1;\n${ind}proxy_set_header Connection "";\n${ind}proxy_set_header Host $host;\n${ind}proxy_pass http://$inference_backend_${k}$request_uri;\n        }`,
        );
      }
    if (!mine.some((x) => x.pathPrefix === '/')) locs.push('        location / {\n            return 404;\n        }');
    const maxBody = Math.max(...mine.flatMap((x) => x.pools.map((p) => p.maxBodyBytes)));
    const port = o.listenPorts[l] ?? o.listenPort;
    const listen = o.listenHost.includes(':') ? `[${o.listenHost}]:${port}` : `${o.listenHost}:${port}`;
    servers.push(`    server {
        listen ${listen};
        # The whole body in one memory buffer, so epp.js can read it (r.requestText).
        client_max_body_size ${sizeK(maxBody)};
        client_body_buffer_size ${sizeK(maxBody)};
        client_body_in_single_buffer on;

${locs.join('\n\n')}
    }`);
  }

  return `${nginxNjsPreamble(o, fetchTimeoutMs)}
    # ${entries.length} (route, pool) entries on ${listenerCount(route)} listener(s): eppkit multi-pool.
${http.join('\n\n')}

${failCloseServer(failCloseSock, 'eppkit nginx-njs: no endpoint picked (FailClose)')}

${servers.join('\n\n')}
}
`;
}
