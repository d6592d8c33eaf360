// Renders the envoy.yaml (bootstrap v3, as JSON — a subset of YAML) that puts real Envoy in
// front of an EPP the way Gateway API Inference Extension gateways do, from the one route model.
//
// Routing choice (works with Envoy 1.40, see docs/ext-proc-behaviour.md):
//   - the ext_proc filter calls the EPP; the EPP's `x-gateway-destination-endpoint` request
//     header mutation is applied and the route cache is cleared (route_cache_action CLEAR),
//   - route 1 matches when that header is present and goes to an ORIGINAL_DST cluster that
//     connects to the header's ip:port (original_dst_lb_config.use_http_header),
//   - route 2 (no header: the EPP was skipped on failure with failure_mode_allow, or it
//     closed the stream without picking): FailOpen goes to the STATIC fallback cluster built
//     from fallbackEndpoints; FailClose (or no fallback endpoints) answers 500, as NGINX
//     Gateway Fabric's template does.
// A client's own x-gateway-destination-endpoint header is removed before ext_proc runs (a
// Lua filter that also clears the route cache), so a skipped EPP never lets the client pick.
// The header value must be ONE ip:port for ORIGINAL_DST; a comma list is cut to its first
// entry by a tiny Lua filter placed after ext_proc (Envoy's ORIGINAL_DST cannot parse lists).
//
// Body processing (docs/ext-proc-behaviour.md §7): the real EPPs answer the request headers
// only after the body has ended and answer each body message with an empty BodyResponse. So
// by default ('epp-compatible') a body is sent in STREAMED mode with
// send_body_without_waiting_for_header_response: BUFFERED waits for the headers answer
// (deadlock until message_timeout) and FULL_DUPLEX_STREAMED rejects an empty body answer
// (500 spurious_message). 'buffered' puts Envoy's buffer filter in front, so the EPP gets the
// whole body as one message (and 413 beyond maxBodyBytes). 'envoy-native' renders the old
// mapping (NONE / BUFFERED / FULL_DUPLEX_STREAMED), kept to measure Envoy's own modes.
import type { RouteModel } from '../../core/route-model.ts';
import {
  DESTINATION_ENDPOINT_HEADER,
  DESTINATION_ENDPOINT_NAMESPACE,
  SERVED_ENDPOINT_KEY,
  SUBSET_HINT_KEY,
  SUBSET_HINT_NAMESPACE,
} from '../../core/proto.ts';

/** How the route's body mode becomes Envoy's processing mode (see the header comment). */
export type EnvoyBodyProcessing = 'epp-compatible' | 'envoy-native';

export interface EnvoyRenderOptions {
  /** Default 'epp-compatible' (works with the real EPPs). */
  bodyProcessing?: EnvoyBodyProcessing;
  /** Listener address. */
  host: string;
  /** Listener port; 0 lets the kernel pick (read back through the admin API). */
  port: number;
  adminHost: string;
  /** 0 = free port (Envoy writes it to --admin-address-path). */
  adminPort: number;
  /** File for the access log (one line per request with response flags and upstream host). */
  accessLogPath: string;
  /** Admin access log. */
  adminAccessLogPath?: string;
  /**
   * HCM stream_idle_timeout, ms. Default 15000. In FULL_DUPLEX_STREAMED mode Envoy 1.40 applies
   * no message_timeout, so this is what ends a request whose EPP hangs (Envoy's default is 300 s).
   */
  streamIdleTimeoutMs?: number;
}

const EPP_CLUSTER = 'eppkit_epp';
const PICKED_CLUSTER = 'eppkit_picked_endpoint';
const FALLBACK_CLUSTER = 'eppkit_fallback_pool';
const BBR_CLUSTER = 'eppkit_bbr';

/**
 * Body-based routing as gateways deploy it: a second ext_proc filter, before the EPP's, that
 * talks to a BBR server (the Gateway API Inference Extension's, or the mock in the BBR role)
 * in FULL_DUPLEX_STREAMED mode. BBR sets X-Gateway-Model-Name from the body and streams the
 * body back, so the EPP's filter sees the header and the same bytes. A BBR failure (its stream
 * error on a body that is not JSON, say) lets the request continue without the header: the
 * EPP's own failure mode is the one that decides whether a request is served.
 */
function bbrFilter(timeoutMs: number): Record<string, unknown> {
  return {
    '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor',
    grpc_service: { envoy_grpc: { cluster_name: BBR_CLUSTER }, timeout: '300s' },
    failure_mode_allow: true,
    message_timeout: durationOf(timeoutMs),
    processing_mode: {
      request_header_mode: 'SEND',
      response_header_mode: 'SKIP',
      request_body_mode: 'FULL_DUPLEX_STREAMED',
      response_body_mode: 'NONE',
      request_trailer_mode: 'SEND',
      response_trailer_mode: 'SKIP',
    },
  };
}

/** Body mode of the route → Envoy's ProcessingMode (enum names as Envoy's JSON accepts them). */
export function processingModeFor(route: RouteModel, bodyProcessing: EnvoyBodyProcessing = 'epp-compatible'): Record<string, string> {
  const native = bodyProcessing === 'envoy-native';
  const body = route.bodyMode === 'none' ? 'NONE' : !native ? 'STREAMED' : route.bodyMode === 'buffered' ? 'BUFFERED' : 'FULL_DUPLEX_STREAMED';
  return {
    request_header_mode: 'SEND',
    response_header_mode: route.responseProcessing ? 'SEND' : 'SKIP',
    request_body_mode: body,
    response_body_mode: 'NONE',
    // FULL_DUPLEX_STREAMED requires trailers SEND (Envoy rejects the config otherwise).
    request_trailer_mode: body === 'FULL_DUPLEX_STREAMED' ? 'SEND' : 'SKIP',
    response_trailer_mode: 'SKIP',
  };
}

function splitHostPort(addr: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(addr.trim());
  if (!m) throw new Error(`not an ip:port address: ${addr}`);
  return { host: m[1]!, port: Number(m[2]) };
}

function socketAddress(addr: string): { socket_address: { address: string; port_value: number } } {
  const { host, port } = splitHostPort(addr);
  return { socket_address: { address: host, port_value: port } };
}

function durationOf(ms: number): string {
  return `${(ms / 1000).toFixed(3)}s`;
}

// Keeps the first entry of a comma-separated endpoint list: ORIGINAL_DST accepts exactly
// one ip:port, the EPP protocol allows fallbacks after the first.
function luaString(v: string): string {
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Before ext_proc: drop a client-sent pick (and re-match), and publish the subset hint. */
function stripAndHintLua(subsetHint: string[] | undefined): string {
  const hint = subsetHint
    ? `  handle:streamInfo():dynamicMetadata():set("${SUBSET_HINT_NAMESPACE}", "${SUBSET_HINT_KEY}", { ${subsetHint.map(luaString).join(', ')} })\n`
    : '';
  return `
function envoy_on_request(handle)
  if handle:headers():get("${DESTINATION_ENDPOINT_HEADER}") ~= nil then
    handle:headers():remove("${DESTINATION_ENDPOINT_HEADER}")
    handle:clearRouteCache()
  end
${hint}end
`;
}

export interface AllowList {
  /** ip:port entries, and bare IPs (matched on the IP alone). */
  exact: string[];
  bareIps: string[];
  /** IPv4 CIDRs as [network as a number, prefix bits]. */
  v4Cidrs: Array<[number, number]>;
}

function ipv4ToNumber(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! * 256 + parts[1]!) * 256 + parts[2]!) * 256 + parts[3]!;
}

/**
 * Splits route.allow for the Lua check. Throws on what the Lua check cannot express (an IPv6
 * CIDR shorter than /128), so the driver can say the route is unsupported.
 */
export function parseAllowList(allow: readonly string[]): AllowList {
  const out: AllowList = { exact: [], bareIps: [], v4Cidrs: [] };
  for (const raw of allow) {
    const e = raw.trim();
    const cidr = /^(.+)\/(\d{1,3})$/.exec(e);
    if (cidr) {
      const n = ipv4ToNumber(cidr[1]!);
      const bits = Number(cidr[2]);
      if (n !== undefined && bits <= 32) out.v4Cidrs.push([n, bits]);
      else if (cidr[1]!.includes(':') && bits === 128) out.bareIps.push(cidr[1]!.toLowerCase());
      else throw new Error(`allowlist entry ${e}: only IPv4 CIDRs, IPv6 /128, IPs and ip:port are supported by the envoy data plane`);
    } else if (/:\d+$/.test(e) && (e.startsWith('[') || !e.slice(0, e.lastIndexOf(':')).includes(':'))) {
      out.exact.push(e.toLowerCase());
    } else out.bareIps.push(e.replace(/^\[|\]$/g, '').toLowerCase());
  }
  return out;
}

function allowLua(allow: AllowList): string {
  const set = (xs: string[]): string => `{ ${xs.map((x) => `[${luaString(x)}] = true`).join(', ')} }`;
  return `
local allow_exact = ${set(allow.exact)}
local allow_ips = ${set(allow.bareIps)}
local allow_cidrs = { ${allow.v4Cidrs.map(([n, b]) => `{ ${n}, ${b} }`).join(', ')} }
local function ip4(s)
  local a, b, c, d = string.match(s, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if a == nil then return nil end
  return ((tonumber(a) * 256 + tonumber(b)) * 256 + tonumber(c)) * 256 + tonumber(d)
end
local function allowed(ep)
  ep = string.lower(ep)
  if allow_exact[ep] then return true end
  local ip = string.match(ep, "^%[([^%]]+)%]:%d+$") or string.match(ep, "^([^:]+):%d+$")
  if ip == nil then return false end
  if allow_ips[ip] then return true end
  local n = ip4(ip)
  if n == nil then return false end
  for _, c in ipairs(allow_cidrs) do
    local size = 2 ^ (32 - c[2])
    if math.floor(n / size) == math.floor(c[1] / size) then return true end
  end
  return false
end
`;
}

// After ext_proc: keep the first entry of a comma-separated pick (ORIGINAL_DST accepts exactly
// one ip:port), refuse it with 500 when an allowlist excludes it, and remember it; on the way
// back, report it as the served endpoint when an upstream answered (x-envoy-upstream-service-time
// is only on upstream responses), so ext_proc forwards envoy.lb
// x-gateway-destination-endpoint-served with the response headers.
function firstEndpointLua(allow: AllowList | undefined): string {
  const check = allow
    ? `
    if first ~= nil and not allowed(first) then
      handle:respond({ [":status"] = "500", ["content-type"] = "text/plain" }, "eppkit envoy: endpoint not allowed: " .. first .. "\\n")
      return
    end`
    : '';
  return `${allow ? allowLua(allow) : ''}
function envoy_on_request(handle)
  local v = handle:headers():get("${DESTINATION_ENDPOINT_HEADER}")
  if v ~= nil then
    local first = string.match(v, "^%s*([^,%s]+)")${check}
    if first ~= nil and first ~= v then
      handle:headers():replace("${DESTINATION_ENDPOINT_HEADER}", first)
    end
    if first ~= nil then
      handle:streamInfo():dynamicMetadata():set("eppkit", "picked", first)
    end
  end
end

function envoy_on_response(handle)
  if handle:headers():get("x-envoy-upstream-service-time") == nil then
    return
  end
  local md = handle:streamInfo():dynamicMetadata():get("eppkit")
  if md ~= nil and md["picked"] ~= nil then
    handle:streamInfo():dynamicMetadata():set("${DESTINATION_ENDPOINT_NAMESPACE}", "${SERVED_ENDPOINT_KEY}", md["picked"])
  end
end
`;
}

export function renderEnvoyConfig(route: RouteModel, opts: EnvoyRenderOptions): Record<string, unknown> {
  const hasFallback = route.fallbackEndpoints.length > 0;
  const useFallback = hasFallback && route.failureMode === 'open';
  const prefix = route.pathPrefix || '/';
  // Envoy buffers the whole body in BUFFERED mode up to the connection's buffer limit
  // (413 beyond); the route model's maxBodyBytes is that limit.
  const bufferLimit = Math.max(route.maxBodyBytes, 64 * 1024);

  const extProc: Record<string, unknown> = {
    '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor',
    grpc_service: {
      envoy_grpc: { cluster_name: EPP_CLUSTER },
      // The gRPC call's own deadline must not cut a stream the message timeout allows.
      timeout: '300s',
    },
    failure_mode_allow: route.failureMode === 'open',
    message_timeout: durationOf(route.timeoutMs),
    processing_mode: processingModeFor(route, opts.bodyProcessing),
    // The body goes out as it arrives, not after the headers answer the real EPPs hold back.
    ...(processingModeFor(route, opts.bodyProcessing).request_body_mode === 'STREAMED' ? { send_body_without_waiting_for_header_response: true } : {}),
    // The real EPPs set clear_route_cache, a lenient one may not; CLEAR re-matches the route
    // after the header mutation either way, so route 1 (picked endpoint) can match.
    route_cache_action: 'CLEAR',
    // Forwards the EPP's dynamic_metadata under its own namespace (envoy.lb) instead of
    // the filter's name, as gateways do, so metadata-based routing/logging can read it.
    // Sends the subset hint and the served endpoint (set by the Lua filters) to the EPP.
    metadata_options: {
      receiving_namespaces: { untyped: [DESTINATION_ENDPOINT_NAMESPACE] },
      forwarding_namespaces: { untyped: [SUBSET_HINT_NAMESPACE, DESTINATION_ENDPOINT_NAMESPACE] },
    },
  };

  const routes: unknown[] = [
    {
      name: 'epp_picked',
      match: { prefix, headers: [{ name: DESTINATION_ENDPOINT_HEADER, present_match: true }] },
      route: { cluster: PICKED_CLUSTER, timeout: '0s' },
    },
    useFallback
      ? { name: 'fallback_pool', match: { prefix }, route: { cluster: FALLBACK_CLUSTER, timeout: '0s' } }
      : {
          name: 'no_endpoint',
          match: { prefix },
          direct_response: {
            status: 500,
            body: { inline_string: `eppkit envoy: no endpoint picked (${route.failureMode === 'open' ? 'no fallback endpoints' : 'FailClose'})\n` },
          },
        },
  ];

  const accessLogFormat =
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(:PATH)%" %RESPONSE_CODE% flags=%RESPONSE_FLAGS% details=%RESPONSE_CODE_DETAILS% ' +
    'route=%ROUTE_NAME% upstream=%UPSTREAM_HOST% picked=%REQ(X-GATEWAY-DESTINATION-ENDPOINT)% ' +
    'lb_meta=%DYNAMIC_METADATA(envoy.lb:x-gateway-destination-endpoint)% model=%REQ(X-GATEWAY-MODEL-NAME)% duration=%DURATION%ms\n';

  const hcm = {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
    stat_prefix: 'eppkit',
    codec_type: 'AUTO',
    stream_idle_timeout: durationOf(opts.streamIdleTimeoutMs ?? 15_000),
    access_log: [
      {
        name: 'envoy.access_loggers.file',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
          path: opts.accessLogPath,
          log_format: { text_format_source: { inline_string: accessLogFormat } },
        },
      },
    ],
    route_config: {
      name: 'eppkit_route',
      virtual_hosts: [{ name: 'eppkit', domains: ['*'], routes }],
    },
    http_filters: [
      {
        name: 'eppkit.strip_client_endpoint',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua',
          default_source_code: { inline_string: stripAndHintLua(route.subsetHint) },
        },
      },
      // 'buffered' (epp-compatible): the whole body first, so the EPP gets it as one message.
      ...(route.bodyMode === 'buffered' && opts.bodyProcessing !== 'envoy-native'
        ? [
            {
              name: 'envoy.filters.http.buffer',
              typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer', max_request_bytes: route.maxBodyBytes },
            },
          ]
        : []),
      ...(route.bbr ? [{ name: 'eppkit.bbr', typed_config: bbrFilter(route.timeoutMs) }] : []),
      { name: 'envoy.filters.http.ext_proc', typed_config: extProc },
      {
        name: 'eppkit.first_endpoint',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua',
          default_source_code: { inline_string: firstEndpointLua(route.allow.length > 0 ? parseAllowList(route.allow) : undefined) },
        },
      },
      {
        name: 'envoy.filters.http.router',
        typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
      },
    ],
  };

  const grpcCluster = (name: string, address: string): Record<string, unknown> => ({
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(address) } }] }],
    },
  });
  const epp = splitHostPort(route.eppAddress);
  const eppCluster = grpcCluster(EPP_CLUSTER, `${epp.host}:${epp.port}`);
  if (route.bbr && !route.bbr.extProcAddress) throw new Error('route.bbr needs extProcAddress (the BBR ext_proc server) for the envoy data plane');
  if (route.eppTls) {
    const tlsContext: Record<string, unknown> = {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
      common_tls_context: {
        alpn_protocols: ['h2'],
        // Verify the chain against the CA file (system roots without one) and the EPP's name:
        // serverName as a DNS SAN, else the address's IP as an IP SAN.
        ...(route.eppTls.insecureSkipVerify
          ? {}
          : {
              validation_context: {
                trusted_ca: { filename: route.eppTls.caFile ?? '/etc/ssl/certs/ca-certificates.crt' },
                match_typed_subject_alt_names: [
                  route.eppTls.serverName
                    ? { san_type: 'DNS', matcher: { exact: route.eppTls.serverName } }
                    : { san_type: 'IP_ADDRESS', matcher: { exact: splitHostPort(route.eppAddress).host } },
                ],
              },
            }),
      },
    };
    if (route.eppTls.serverName) tlsContext['sni'] = route.eppTls.serverName;
    eppCluster['transport_socket'] = { name: 'envoy.transport_sockets.tls', typed_config: tlsContext };
  }

  const clusters: unknown[] = [
    eppCluster,
    {
      name: PICKED_CLUSTER,
      type: 'ORIGINAL_DST',
      lb_policy: 'CLUSTER_PROVIDED',
      connect_timeout: '2s',
      // Keeps idle per-endpoint hosts around briefly; a stale one is cleaned up after this.
      cleanup_interval: '5s',
      original_dst_lb_config: { use_http_header: true, http_header_name: DESTINATION_ENDPOINT_HEADER },
      per_connection_buffer_limit_bytes: bufferLimit,
    },
  ];
  if (route.bbr?.extProcAddress) clusters.push(grpcCluster(BBR_CLUSTER, route.bbr.extProcAddress));
  if (useFallback) {
    clusters.push({
      name: FALLBACK_CLUSTER,
      type: 'STATIC',
      lb_policy: 'ROUND_ROBIN',
      connect_timeout: '2s',
      per_connection_buffer_limit_bytes: bufferLimit,
      load_assignment: {
        cluster_name: FALLBACK_CLUSTER,
        endpoints: [{ lb_endpoints: route.fallbackEndpoints.map((e) => ({ endpoint: { address: socketAddress(e) } })) }],
      },
    });
  }

  return {
    node: { id: 'eppkit-envoy', cluster: 'eppkit' },
    admin: {
      address: { socket_address: { address: opts.adminHost, port_value: opts.adminPort } },
      ...(opts.adminAccessLogPath
        ? {
            access_log: [
              {
                name: 'envoy.access_loggers.file',
                typed_config: {
                  '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
                  path: opts.adminAccessLogPath,
                },
              },
            ],
          }
        : {}),
    },
    static_resources: {
      listeners: [
        {
          name: 'eppkit_listener',
          address: { socket_address: { address: opts.host, port_value: opts.port } },
          per_connection_buffer_limit_bytes: bufferLimit,
          filter_chains: [
            { filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] },
          ],
        },
      ],
      clusters,
    },
    // No runtime layers, no overload manager: a loopback test proxy.
    layered_runtime: { layers: [{ name: 'static', static_layer: {} }] },
  };
}

/** envoy.yaml text (JSON, which is YAML). */
export function renderEnvoyYaml(route: RouteModel, opts: EnvoyRenderOptions): string {
  return `${JSON.stringify(renderEnvoyConfig(route, opts), null, 2)}\n`;
}
