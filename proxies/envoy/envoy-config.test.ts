import { describe, expect, it } from 'vitest';
import { routeWithDefaults, type RouteModel } from '../../core/route-model.ts';
import { processingModeFor, renderEnvoyConfig } from './envoy-config.ts';

const OPTS = { host: '127.0.0.1', port: 0, adminHost: '127.0.0.1', adminPort: 0, accessLogPath: '/tmp/access.log' };

function route(r: Partial<RouteModel> = {}): RouteModel {
  return routeWithDefaults({ eppAddress: '127.0.0.1:9002', ...r });
}

// Digs through the rendered bootstrap without restating its whole shape.
function parts(cfg: Record<string, unknown>) {
  const sr = cfg['static_resources'] as { listeners: any[]; clusters: any[] };
  const hcm = sr.listeners[0].filter_chains[0].filters[0].typed_config;
  const extProc = hcm.http_filters.find((f: any) => f.name === 'envoy.filters.http.ext_proc').typed_config;
  return { clusters: sr.clusters, hcm, extProc, routes: hcm.route_config.virtual_hosts[0].routes as any[], filters: hcm.http_filters.map((f: any) => f.name) };
}

describe('processingModeFor', () => {
  it('envoy-native maps body modes to NONE, BUFFERED and FULL_DUPLEX_STREAMED (with trailers SEND only when streamed)', () => {
    expect(processingModeFor(route({ bodyMode: 'none' }), 'envoy-native')).toMatchObject({ request_body_mode: 'NONE', request_trailer_mode: 'SKIP' });
    expect(processingModeFor(route({ bodyMode: 'buffered' }), 'envoy-native')).toMatchObject({ request_body_mode: 'BUFFERED', request_trailer_mode: 'SKIP' });
    expect(processingModeFor(route({ bodyMode: 'streamed' }), 'envoy-native')).toMatchObject({ request_body_mode: 'FULL_DUPLEX_STREAMED', request_trailer_mode: 'SEND' });
  });

  it('epp-compatible (default) sends every body STREAMED without waiting for the headers answer; buffered puts the buffer filter first', () => {
    expect(processingModeFor(route({ bodyMode: 'buffered' }))).toMatchObject({ request_body_mode: 'STREAMED', request_trailer_mode: 'SKIP' });
    expect(processingModeFor(route({ bodyMode: 'streamed' }))).toMatchObject({ request_body_mode: 'STREAMED', request_trailer_mode: 'SKIP' });
    const buffered = parts(renderEnvoyConfig(route({ bodyMode: 'buffered' }), OPTS));
    expect(buffered.filters.indexOf('envoy.filters.http.buffer')).toBe(buffered.filters.indexOf('envoy.filters.http.ext_proc') - 1);
    expect(buffered.extProc.send_body_without_waiting_for_header_response).toBe(true);
    expect(parts(renderEnvoyConfig(route({ bodyMode: 'streamed' }), OPTS)).filters).not.toContain('envoy.filters.http.buffer');
    expect(parts(renderEnvoyConfig(route({ bodyMode: 'none' }), OPTS)).extProc.send_body_without_waiting_for_header_response).toBeUndefined();
  });

  it('sends response headers only with responseProcessing', () => {
    expect(processingModeFor(route()).response_header_mode).toBe('SKIP');
    expect(processingModeFor(route({ responseProcessing: true })).response_header_mode).toBe('SEND');
  });
});

describe('renderEnvoyConfig', () => {
  it('puts failure mode and timeout on the ext_proc filter, after the client-header strip and before the router', () => {
    const { extProc, filters } = parts(renderEnvoyConfig(route({ failureMode: 'open', timeoutMs: 1500 }), OPTS));
    expect(extProc.failure_mode_allow).toBe(true);
    expect(extProc.message_timeout).toBe('1.500s');
    expect(extProc.route_cache_action).toBe('CLEAR');
    expect(filters).toEqual(['eppkit.strip_client_endpoint', 'envoy.filters.http.buffer', 'envoy.filters.http.ext_proc', 'eppkit.first_endpoint', 'envoy.filters.http.router']);
  });

  it('routes a picked endpoint to ORIGINAL_DST on the EPP header', () => {
    const { routes, clusters } = parts(renderEnvoyConfig(route(), OPTS));
    expect(routes[0].match.headers).toEqual([{ name: 'x-gateway-destination-endpoint', present_match: true }]);
    const picked = clusters.find((c) => c.name === routes[0].route.cluster);
    expect(picked.type).toBe('ORIGINAL_DST');
    expect(picked.original_dst_lb_config).toEqual({ use_http_header: true, http_header_name: 'x-gateway-destination-endpoint' });
  });

  it('FailOpen with fallback endpoints: no pick goes to a STATIC pool of exactly those endpoints', () => {
    const { routes, clusters } = parts(renderEnvoyConfig(route({ failureMode: 'open', fallbackEndpoints: ['127.0.0.2:8000', '[::1]:8001'] }), OPTS));
    const pool = clusters.find((c) => c.name === routes[1].route.cluster);
    expect(pool.type).toBe('STATIC');
    expect(pool.load_assignment.endpoints[0].lb_endpoints.map((e: any) => e.endpoint.address.socket_address)).toEqual([
      { address: '127.0.0.2', port_value: 8000 },
      { address: '::1', port_value: 8001 },
    ]);
  });

  it('FailClose (even with fallback endpoints) answers 500 when no endpoint was picked', () => {
    const { routes, clusters } = parts(renderEnvoyConfig(route({ failureMode: 'close', fallbackEndpoints: ['127.0.0.2:8000'] }), OPTS));
    expect(routes[1].direct_response.status).toBe(500);
    expect(clusters.map((c) => c.name)).not.toContain('eppkit_fallback_pool');
  });

  it('speaks h2c to the EPP, or TLS with the CA and server name when eppTls is set', () => {
    const plain = parts(renderEnvoyConfig(route(), OPTS)).clusters.find((c) => c.name === 'eppkit_epp');
    expect(plain.transport_socket).toBeUndefined();
    expect(plain.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address).toEqual({ address: '127.0.0.1', port_value: 9002 });
    const tls = parts(renderEnvoyConfig(route({ eppTls: { caFile: '/ca.pem', serverName: 'epp.local' } }), OPTS)).clusters.find((c) => c.name === 'eppkit_epp');
    expect(tls.transport_socket.typed_config.sni).toBe('epp.local');
    expect(tls.transport_socket.typed_config.common_tls_context.validation_context.trusted_ca.filename).toBe('/ca.pem');
  });

  it('sizes buffers from maxBodyBytes and rejects an EPP address that is not ip:port', () => {
    const cfg = renderEnvoyConfig(route({ maxBodyBytes: 8 * 1024 * 1024 }), OPTS) as any;
    expect(cfg.static_resources.listeners[0].per_connection_buffer_limit_bytes).toBe(8 * 1024 * 1024);
    expect(() => renderEnvoyConfig(route({ eppAddress: 'epp-without-port' }), OPTS)).toThrow(/ip:port/);
  });
});
