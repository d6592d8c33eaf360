// Pieces of nginx.conf that both nginx data planes render (the native module and the NJS
// baseline), so the two configs quote, size and list endpoints the same way.
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { byLongestPrefix, listenerCount, planeRoutes, routeRules, weightPercents, type RouteModel } from '../core/route-model.ts';

export function splitHostPort(addr: string): { host: string; port: string } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(addr.trim());
  if (!m) throw new Error(`not a host:port address: ${addr}`);
  return { host: m[1]!, port: m[2]! };
}

/** host:port as nginx wants it (IPv6 in brackets). */
export function hostPort(addr: string): string {
  const { host, port } = splitHostPort(addr);
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export function quote(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** nginx size literal, whole kibibytes. */
export function sizeK(bytes: number): string {
  return `${Math.ceil(bytes / 1024)}k`;
}

/** One `server` line per endpoint, indented for an upstream block inside http. */
export function serverLines(endpoints: readonly string[]): string {
  return endpoints.map((e) => `        server ${hostPort(e)};`).join('\n');
}

/** A server on a unix socket that answers 500: where a FailClose request with no pick goes. */
export function failCloseServer(sock: string, message: string): string {
  return `    server {
        listen unix:${sock};
        access_log off;
        return 500 "${message.replace(/["\\]/g, '\\$&')}\\n";
    }`;
}

/**
 * Where the fail-close server listens: workDir/fail-close.sock, unless that path is longer than
 * a unix socket address allows (108 bytes with the NUL; nginx refuses the config with "too long
 * path"), as under a deep report folder with a long scenario name; then a short path in the
 * temp dir, unique per workDir.
 */
export function failCloseSocketPath(workDir: string): string {
  const wd = workDir.replace(/\/$/, '');
  const inDir = `${wd}/fail-close.sock`;
  if (Buffer.byteLength(inDir) <= 100) return inDir;
  return `${tmpdir()}/eppkit-${createHash('sha256').update(wd).digest('hex').slice(0, 16)}.sock`;
}

// ---- several routes (multi-pool), shared by the module and NJS renderers ------------------


/** Internal location of entry k when its rule splits traffic across pools. */
export const POOL_PATH = '/_eppkit_pool_';

/** One split_clients block per rule with several pools: a pool location per request, by weight. */
export function splitClientsBlocks(route: RouteModel): string[] {
  const index = new Map(planeRoutes(route).map((e, k) => [e, k]));
  const out: string[] = [];
  routeRules(route).forEach((rule, r) => {
    if (rule.pools.length < 2) return;
    const pct = weightPercents(rule.pools);
    const lines = rule.pools.map((p, j) => `        ${j === rule.pools.length - 1 ? '*' : `${pct[j]}%`} ${POOL_PATH}${index.get(p)};`);
    out.push(`    # Rule ${rule.pathPrefix}: a pool per request, by weight.\n    split_clients "\${request_id}" $eppkit_split_${r} {\n${lines.join('\n')}\n    }`);
  });
  return out;
}

export interface MultiRouteServerParts {
  listenHost: string;
  /** One port per listener, by listener index. */
  listenPorts: readonly number[];
  /** Directives of entry k's location; `viaRewrite` when reached from a split rule. */
  entryBody(e: RouteModel, k: number, viaRewrite: boolean): string;
  /** Entry k's internal location after the pick (NGF forms), if any. */
  internalLocation?(e: RouteModel, k: number): string;
  /** Body-size directives of a server whose largest pool limit is maxBody. */
  serverHead(maxBody: number): string;
}

/**
 * One `server` per listener: a location per rule (longest prefix first), split rules rewriting
 * to their pools' internal locations, then the internal locations, then 404 for the rest.
 */
export function multiRouteServers(route: RouteModel, p: MultiRouteServerParts): string[] {
  const index = new Map(planeRoutes(route).map((e, k) => [e, k]));
  const rules = routeRules(route);
  const ind = '            ';
  const servers: string[] = [];
  for (let l = 0; l < listenerCount(route); l++) {
    const mine = byLongestPrefix(rules.filter((x) => x.listener === l));
    const locs: string[] = [];
    for (const rule of mine) {
      if (rule.pools.length === 1) {
        const e = rule.pools[0]!;
        locs.push(`        location ${rule.pathPrefix} {\n${p.entryBody(e, index.get(e)!, false)}\n        }`);
        continue;
      }
      locs.push(`        location ${rule.pathPrefix} {\n${ind}rewrite ^ $eppkit_split_${rules.indexOf(rule)} last;\n        }`);
      for (const e of rule.pools) locs.push(`        location = ${POOL_PATH}${index.get(e)} {\n${ind}internal;\n${p.entryBody(e, index.get(e)!, true)}\n        }`);
    }
    if (p.internalLocation) for (const rule of mine) for (const e of rule.pools) locs.push(p.internalLocation(e, index.get(e)!));
    if (!mine.some((x) => x.pathPrefix === '/')) locs.push('        location / {\n            return 404;\n        }');
    const maxBody = Math.max(...mine.flatMap((x) => x.pools.map((e) => e.maxBodyBytes)));
    const port = p.listenPorts[l];
    const listen = p.listenHost.includes(':') ? `[${p.listenHost}]:${port}` : `${p.listenHost}:${port}`;
    servers.push(`    server {\n        listen ${listen};\n${p.serverHead(maxBody)}\n\n${locs.join('\n\n')}\n    }`);
  }
  return servers;
}

/** proxy_* lines of a location that proxies to `target`. */
export function proxyLines(indent: string, target: string, nextUpstream = false): string {
  return `${indent}proxy_http_version 1.1;\n${indent}proxy_set_header Connection "";\n${indent}proxy_set_header Host $host;\n${nextUpstream ? `${indent}proxy_next_upstream error timeout;\n` : ''}${indent}proxy_pass ${target};`;
}
