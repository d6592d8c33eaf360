// nginx.conf for several routes (the `multi-pool` feature): one `server` per listener, one
// location per rule (path prefix), each (route, pool) entry with its own EPP directives,
// upstreams and, in the NGF form, its own internal location. A rule split across pools draws a
// pool per request with `split_clients` on $request_id and rewrites to that pool's internal
// location; the backend still gets the client's URI ($request_uri) and the module sends the
// EPP the original :path (r->unparsed_uri). The module needs no change: its directives are per
// location. Both forms, with or without `epp_balancer`, as the single-route renderer.
import { byLongestPrefix, listenerCount, planeRoutes, routeRules, weightPercents, type RouteModel } from '../../core/route-model.ts';
import { failCloseServer, failCloseSocketPath, hostPort, quote, serverLines, sizeK, splitHostPort } from '../nginx-conf.ts';
import { eppDirectives, INTERNAL_PATH, nginxEppPreamble, type NginxEppRenderOptions } from './nginx-epp-config.ts';

export interface NginxEppMultiRenderOptions extends NginxEppRenderOptions {
  /** One port per listener, by listener index ([0] = listenPort). */
  listenPorts: readonly number[];
}

const POOL_PATH = '/_eppkit_pool_';

export function renderNginxEppMultiConfig(route: RouteModel, o: NginxEppMultiRenderOptions): string {
  const wd = o.workDir.replace(/\/$/, '');
  const form = o.form ?? 'ngf';
  const balancer = o.balancer ?? false;
  const failCloseSock = failCloseSocketPath(wd);
  const entries = planeRoutes(route);
  const index = new Map(entries.map((e, k) => [e, k]));
  const ind = '            ';
  const nextUpstream = balancer ? `${ind}proxy_next_upstream error timeout;\n` : '';
  const proxyLines = (target: string): string =>
    `${ind}proxy_http_version 1.1;\n${ind}proxy_set_header Connection "";\n${ind}proxy_set_header Host $host;\n${nextUpstream}${ind}proxy_pass ${target};`;

  // http level: per entry its upstreams (and NGF map); per weighted rule its split.
  const http: string[] = [];
  for (const [k, e] of entries.entries()) {
    const pool = e.fallbackEndpoints.length > 0;
    const failOpen = e.failureMode === 'open' && pool;
    if (balancer) http.push(`    upstream eppkit_pick_${k} {\n        epp_balancer;\n${failOpen ? serverLines(e.fallbackEndpoints) : `        server unix:${failCloseSock};`}\n    }`);
    else {
      if (form === 'ngf')
        http.push(`    map $inference_workload_endpoint $inference_backend_${k} {\n        ""      ${failOpen ? `eppkit_pool_${k}` : `unix:${failCloseSock}:`};\n        default $inference_workload_endpoint;\n    }`);
      if (pool) http.push(`    upstream eppkit_pool_${k} {\n${serverLines(e.fallbackEndpoints)}\n    }`);
    }
  }
  const rules = routeRules(route);
  rules.forEach((rule, r) => {
    if (rule.pools.length < 2) return;
    const pct = weightPercents(rule.pools);
    const lines = rule.pools.map((p, j) => `        ${j === rule.pools.length - 1 ? '*' : `${pct[j]}%`} ${POOL_PATH}${index.get(p)};`);
    http.push(`    # Rule ${rule.pathPrefix}: a pool per request, by weight.\n    split_clients "\${request_id}" $eppkit_split_${r} {\n${lines.join('\n')}\n    }`);
  });

  // The body of the location that calls entry k's EPP and proxies to its pick.
  const entryBody = (e: RouteModel, k: number, viaRewrite: boolean): string => {
    const failOpen = e.failureMode === 'open' && e.fallbackEndpoints.length > 0;
    if (form === 'ngf') {
      const epp = splitHostPort(e.eppAddress);
      return `${ind}set $epp_host ${quote(epp.host)};\n${ind}set $epp_port ${quote(epp.port)};\n${ind}set $epp_internal_path ${INTERNAL_PATH}_${k};\n${eppDirectives(e, ind)}\n${ind}epp_get_endpoint on;`;
    }
    // After a rewrite the URI is the pool location's: send the client's ($request_uri).
    const target = balancer ? `http://eppkit_pick_${k}${viaRewrite ? '$request_uri' : ''}` : `http://$inference_workload_endpoint${viaRewrite ? '$request_uri' : ''}`;
    return `${ind}epp_endpoint ${hostPort(e.eppAddress)};\n${failOpen && !balancer ? `${ind}epp_default_upstream eppkit_pool_${k};\n` : ''}${eppDirectives(e, ind)}\n${proxyLines(target)}`;
  };

  const servers: string[] = [];
  for (let l = 0; l < listenerCount(route); l++) {
    const mine = byLongestPrefix(rules.filter((x) => x.listener === l));
    const locs: string[] = [];
    for (const rule of mine) {
      const r = rules.indexOf(rule);
      if (rule.pools.length === 1) {
        const e = rule.pools[0]!;
        locs.push(`        location ${rule.pathPrefix} {\n${entryBody(e, index.get(e)!, false)}\n        }`);
        continue;
      }
      locs.push(`        location ${rule.pathPrefix} {\n${ind}rewrite ^ $eppkit_split_${r} last;\n        }`);
      for (const e of rule.pools) {
        const k = index.get(e)!;
        locs.push(`        location = ${POOL_PATH}${k} {\n${ind}internal;\n${entryBody(e, k, true)}\n        }`);
      }
    }
    if (form === 'ngf') {
      for (const rule of mine)
        for (const e of rule.pools) {
          const k = index.get(e)!;
          locs.push(
            `        location ${INTERNAL_PATH}_${k} {\n${ind}internal;\n${e.responseProcessing ? `${ind}epp_report_served on;\n` : ''}${proxyLines(`http://${balancer ? `eppkit_pick_${k}` : `$inference_backend_${k}`}$request_uri`)}\n        }`,
          );
        }
    }
    if (!mine.some((x) => x.pathPrefix === '/')) locs.push('        location / {\n            return 404;\n        }');
    const maxBody = Math.max(...mine.flatMap((x) => x.pools.map((p) => p.maxBodyBytes)));
    const port = o.listenPorts[l] ?? o.listenPort;
    const listen = o.listenHost.includes(':') ? `[${o.listenHost}]:${port}` : `${o.listenHost}:${port}`;
    servers.push(`    server {
        listen ${listen};
        client_max_body_size ${o.clientMaxBodySize ?? sizeK(maxBody)};
        client_body_buffer_size ${o.bodyBufferSize ?? '16k'};

${locs.join('\n\n')}
    }`);
  }

  return `${nginxEppPreamble(o, form)}
    # ${entries.length} (route, pool) entries on ${listenerCount(route)} listener(s): eppkit multi-pool.
${http.join('\n\n')}

${failCloseServer(failCloseSock, 'eppkit nginx-epp: no endpoint picked')}

${servers.join('\n\n')}
}
`;
}
