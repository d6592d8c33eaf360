// envoy.yaml for several routes (the `multi-pool` feature), in two tiers:
//   - each (route, pool) entry gets the single-route configuration of envoy-config.ts as its own
//     listener on a loopback port (its ext_proc filter with that pool's EPP, message timeout,
//     failure mode and body mode; its picked-endpoint and fallback clusters), names suffixed;
//   - one front listener per "gateway" routes by path prefix (Gateway API PathPrefix:
//     path_separated_prefix) to those listeners, with weighted_clusters when a rule splits its
//     traffic across pools.
// Why not one ext_proc filter with per-route overrides: Envoy's ExtProcPerRoute cannot set the
// message timeout, and each pool of a weighted rule needs its own EPP, timeout and failure mode;
// the extra loopback hop keeps every pool's filter exactly the one the single-route scenarios
// prove. The front tier adds no x-envoy-* headers (suppress_envoy_headers) and no request id.
import { byLongestPrefix, listenerCount, planeRoutes, routeRules, weightPercents, type RouteModel } from '../../core/route-model.ts';
import { renderEnvoyConfig, type EnvoyRenderOptions } from './envoy-config.ts';

export interface EnvoyMultiRenderOptions extends EnvoyRenderOptions {
  /** A free loopback port per (route, pool) entry, in planeRoutes order: its inner listener. */
  innerPorts: readonly number[];
}

/** Front listener names: eppkit_listener for listener 0 (what the driver reads back), then _1, ... */
export function frontListenerName(l: number): string {
  return l === 0 ? 'eppkit_listener' : `eppkit_listener_${l}`;
}

const SINGLE_NAMES = ['eppkit_epp', 'eppkit_picked_endpoint', 'eppkit_fallback_pool', 'eppkit_bbr', 'eppkit_route', 'eppkit_listener'];

/** The single-route names with a suffix, so several entries live in one bootstrap. */
function renamed<T>(v: T, suffix: string): T {
  if (typeof v === 'string') return (SINGLE_NAMES.includes(v) ? `${v}${suffix}` : v) as T;
  if (Array.isArray(v)) return v.map((x) => renamed(x, suffix)) as T;
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = k === 'stat_prefix' && x === 'eppkit' ? `eppkit${suffix}` : renamed(x, suffix);
    return out as T;
  }
  return v;
}

interface Bootstrap {
  static_resources: { listeners: unknown[]; clusters: unknown[] };
  [k: string]: unknown;
}

export function renderEnvoyMultiConfig(route: RouteModel, opts: EnvoyMultiRenderOptions): Record<string, unknown> {
  const entries = planeRoutes(route);
  const index = new Map(entries.map((e, k) => [e, k]));
  const listeners: unknown[] = [];
  const clusters: unknown[] = [];
  let base: Bootstrap | undefined;
  for (const [k, e] of entries.entries()) {
    const port = opts.innerPorts[k];
    if (port === undefined) throw new Error(`no inner port for entry ${k}`);
    // The inner listener serves everything the front sends it: prefix '/'.
    const single = renderEnvoyConfig({ ...e, pathPrefix: '/', routes: undefined }, { ...opts, host: '127.0.0.1', port }) as unknown as Bootstrap;
    base ??= single;
    const parts = renamed(single.static_resources, `_pool_${k}`);
    listeners.push(...parts.listeners);
    clusters.push(...parts.clusters);
    const bufferLimit = Math.max(e.maxBodyBytes, 64 * 1024);
    clusters.push({
      name: `eppkit_to_pool_${k}`,
      type: 'STATIC',
      connect_timeout: '1s',
      per_connection_buffer_limit_bytes: bufferLimit,
      load_assignment: { cluster_name: `eppkit_to_pool_${k}`, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
    });
  }
  const rules = routeRules(route);
  for (let l = 0; l < listenerCount(route); l++) {
    const mine = byLongestPrefix(rules.filter((r) => r.listener === l));
    const routes = mine.map((rule) => {
      const match = rule.pathPrefix === '/' ? { prefix: '/' } : { path_separated_prefix: rule.pathPrefix.replace(/\/+$/, '') };
      const name = `rule_${rule.pathPrefix}`;
      if (rule.pools.length === 1) return { name, match, route: { cluster: `eppkit_to_pool_${index.get(rule.pools[0]!)}`, timeout: '0s' } };
      const pct = weightPercents(rule.pools);
      return {
        name,
        match,
        route: { weighted_clusters: { clusters: rule.pools.map((p, j) => ({ name: `eppkit_to_pool_${index.get(p)}`, weight: pct[j] })) }, timeout: '0s' },
      };
    });
    const maxBody = Math.max(64 * 1024, ...mine.flatMap((r) => r.pools.map((p) => p.maxBodyBytes)));
    listeners.unshift({
      name: frontListenerName(l),
      // Listener 0 on the given port (0 = the kernel's pick); the others always the kernel's.
      address: { socket_address: { address: opts.host, port_value: l === 0 ? opts.port : 0 } },
      per_connection_buffer_limit_bytes: maxBody,
      filter_chains: [
        {
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typed_config: {
                '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                stat_prefix: `eppkit_front_${l}`,
                codec_type: 'AUTO',
                generate_request_id: false,
                stream_idle_timeout: `${((opts.streamIdleTimeoutMs ?? 15_000) / 1000).toFixed(3)}s`,
                access_log: [
                  {
                    name: 'envoy.access_loggers.file',
                    typed_config: {
                      '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
                      path: opts.accessLogPath,
                      log_format: { text_format_source: { inline_string: `[%START_TIME%] front-${l} "%REQ(:METHOD)% %REQ(:PATH)%" %RESPONSE_CODE% route=%ROUTE_NAME% upstream=%UPSTREAM_CLUSTER% duration=%DURATION%ms\n` } },
                    },
                  },
                ],
                route_config: { name: `eppkit_front_route_${l}`, virtual_hosts: [{ name: 'eppkit_front', domains: ['*'], routes }] },
                http_filters: [
                  {
                    name: 'envoy.filters.http.router',
                    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router', suppress_envoy_headers: true },
                  },
                ],
              },
            },
          ],
        },
      ],
    });
  }
  // Front listeners first, in listener order (unshift reversed them).
  const fronts = listeners.splice(0, listenerCount(route)).reverse();
  if (!base) throw new Error('multi-pool route without entries');
  return { ...base, static_resources: { listeners: [...fronts, ...listeners], clusters } };
}

export function renderEnvoyMultiYaml(route: RouteModel, opts: EnvoyMultiRenderOptions): string {
  return `${JSON.stringify(renderEnvoyMultiConfig(route, opts), null, 2)}\n`;
}
