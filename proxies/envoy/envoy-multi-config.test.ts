import { describe, expect, it } from 'vitest';
import { routeWithDefaults, type RouteModel } from '../../core/route-model.ts';
import { renderEnvoyMultiConfig } from './envoy-multi-config.ts';

const a = routeWithDefaults({ eppAddress: '127.0.0.1:1001', pathPrefix: '/w', weight: 70, timeoutMs: 300 });
const b = routeWithDefaults({ eppAddress: '127.0.0.1:1002', pathPrefix: '/w', weight: 30, failureMode: 'open', fallbackEndpoints: ['127.0.0.2:80'] });
const c = routeWithDefaults({ eppAddress: '127.0.0.1:1003', pathPrefix: '/other', listener: 1 });
const plane: RouteModel = { ...a, routes: [a, b, c] };

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('envoy multi-pool config', () => {
  const cfg = renderEnvoyMultiConfig(plane, { host: '127.0.0.1', port: 0, adminHost: '127.0.0.1', adminPort: 0, accessLogPath: '/tmp/a.log', innerPorts: [7001, 7002, 7003] }) as Any;
  const listeners = cfg.static_resources.listeners as Any[];
  const clusters = cfg.static_resources.clusters as Any[];
  const hcm = (l: Any): Any => l.filter_chains[0].filters[0].typed_config;

  it('front listeners route by element-wise prefix, a split rule by weighted clusters', () => {
    expect(listeners.map((l) => l.name)).toEqual(['eppkit_listener', 'eppkit_listener_1', 'eppkit_listener_pool_0', 'eppkit_listener_pool_1', 'eppkit_listener_pool_2']);
    const front0 = hcm(listeners[0]!).route_config.virtual_hosts[0].routes;
    expect(front0).toEqual([
      {
        name: 'rule_/w',
        match: { path_separated_prefix: '/w' },
        route: { weighted_clusters: { clusters: [{ name: 'eppkit_to_pool_0', weight: 70 }, { name: 'eppkit_to_pool_1', weight: 30 }] }, timeout: '0s' },
      },
    ]);
    expect(hcm(listeners[1]!).route_config.virtual_hosts[0].routes[0].route.cluster).toBe('eppkit_to_pool_2');
  });

  it("each pool's listener carries its own ext_proc settings and cluster names", () => {
    const inner0 = hcm(listeners[2]!);
    const extProc0 = inner0.http_filters.find((f: Any) => f.name === 'envoy.filters.http.ext_proc').typed_config;
    expect(extProc0.grpc_service.envoy_grpc.cluster_name).toBe('eppkit_epp_pool_0');
    expect(extProc0.message_timeout).toBe('0.300s');
    expect(extProc0.failure_mode_allow).toBe(false);
    const extProc1 = hcm(listeners[3]!).http_filters.find((f: Any) => f.name === 'envoy.filters.http.ext_proc').typed_config;
    expect(extProc1.failure_mode_allow).toBe(true);
    expect(listeners[3]!.address.socket_address.port_value).toBe(7002);
    const names = clusters.map((x) => x.name);
    expect(names).toEqual(expect.arrayContaining(['eppkit_epp_pool_0', 'eppkit_epp_pool_1', 'eppkit_fallback_pool_pool_1', 'eppkit_picked_endpoint_pool_2', 'eppkit_to_pool_0']));
    expect(new Set(names).size).toBe(names.length);
    const epp1 = clusters.find((x) => x.name === 'eppkit_epp_pool_1')!;
    expect(epp1.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value).toBe(1002);
  });
});
