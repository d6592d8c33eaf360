// What every request handler shares: the EPP channels, the upstream connection pool, metrics,
// the logger, and each route's compiled form (allowlist, fallback endpoints, cursor).
import type { Logger } from '../../core/logger.ts';
import type { RouteModel } from '../../core/route-model.ts';
import type { EppChannels } from './epp-channels.ts';
import { Allowlist, parseEndpoint, type Endpoint } from './endpoint.ts';
import type { NodeProxyConfig } from './node-proxy-config.ts';
import type { ProxyMetrics } from './proxy-metrics.ts';
import type { UpstreamClient } from './upstream-client.ts';

export interface CompiledRoute {
  route: RouteModel;
  allow: Allowlist;
  fallback: Endpoint[];
  /** Round-robin start among the fallbacks. */
  cursor: number;
  /** The path prefix with a trailing slash, for element-wise matching. */
  prefixSlash: string;
}

export interface ProxyContext {
  config: NodeProxyConfig;
  channels: EppChannels;
  upstream: UpstreamClient;
  metrics: ProxyMetrics;
  log: Logger;
  routes: CompiledRoute[];
  shimRoute: CompiledRoute;
}

export function compileRoute(route: RouteModel): CompiledRoute {
  return {
    route,
    allow: new Allowlist(route.allow),
    fallback: route.fallbackEndpoints.map((e) => parseEndpoint(e)).filter((e): e is Endpoint => e !== undefined),
    cursor: 0,
    prefixSlash: route.pathPrefix.endsWith('/') ? route.pathPrefix : `${route.pathPrefix}/`,
  };
}

/**
 * Gateway API PathPrefix: matches whole path elements (`/a` matches `/a`, `/a/b`, not `/ab`).
 * Routes sharing the matched prefix with weights split its traffic: one is drawn at random in
 * proportion to its weight (as a Gateway's weighted backendRefs).
 */
export function matchRoute(routes: readonly CompiledRoute[], url: string, random: () => number = Math.random): CompiledRoute | undefined {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  for (const r of routes) {
    if (r.route.pathPrefix === '/' || path === r.route.pathPrefix || path.startsWith(r.prefixSlash)) {
      if (r.route.weight === undefined) return r;
      const group = routes.filter((x) => x.route.pathPrefix === r.route.pathPrefix);
      let x = random() * group.reduce((a, g) => a + (g.route.weight ?? 1), 0);
      for (const g of group) {
        x -= g.route.weight ?? 1;
        if (x < 0) return g;
      }
      return group[group.length - 1];
    }
  }
  return undefined;
}

/** The fallback endpoints in the order to try them, starting at the round-robin cursor. */
export function fallbackOrder(r: CompiledRoute): Endpoint[] {
  const n = r.fallback.length;
  if (n === 0) return [];
  const start = r.cursor % n;
  r.cursor = (r.cursor + 1) % n;
  return [...r.fallback.slice(start), ...r.fallback.slice(0, start)];
}
