// The one route model every data plane renders its own configuration from
// (node-proxy flags/config, nginx.conf, envoy.yaml, the NJS baseline). Scenario files and
// `eppkit run` produce it; drivers consume it.

export type FailureMode = 'open' | 'close';
/** none: headers only; buffered: headers then the whole body; streamed: full-duplex chunks. */
export type BodyMode = 'none' | 'buffered' | 'streamed';

export interface EppTls {
  /** PEM CA bundle file used to verify the EPP; absent = system roots. */
  caFile?: string;
  serverName?: string;
  /** Skip certificate verification (tests only). Default false. */
  insecureSkipVerify?: boolean;
}

export interface RouteModel {
  /** Path prefix this route serves. Default '/'. */
  pathPrefix: string;
  /** The EPP's gRPC address, host:port (loopback in every eppkit run). */
  eppAddress: string;
  /** TLS to the EPP; absent = plaintext h2c. */
  eppTls?: EppTls;
  /** Default 'close' (the EPP spec's FailClose). */
  failureMode: FailureMode;
  /** Per-message EPP timeout, ms. Default 200 (Envoy's message_timeout default). */
  timeoutMs: number;
  /** Default 'buffered'. */
  bodyMode: BodyMode;
  /** ip:port endpoints the data plane uses itself on fail-open (the pool). */
  fallbackEndpoints: string[];
  /** Send response headers to the EPP, with the served endpoint in metadata. Default false. */
  responseProcessing: boolean;
  /** Largest request body accepted, bytes. Default 16 MiB. */
  maxBodyBytes: number;
  /** CIDRs or ip:port the EPP may pick; empty = any. */
  allow: string[];
  /**
   * Optional: ip:port endpoints sent to the EPP as the subset hint
   * (metadata_context envoy.lb.subset_hint / x-gateway-destination-endpoint-subset). Absent = none sent.
   */
  subsetHint?: string[];
}

export const ROUTE_DEFAULTS: Omit<RouteModel, 'eppAddress'> = Object.freeze({
  pathPrefix: '/',
  failureMode: 'close',
  timeoutMs: 200,
  bodyMode: 'buffered',
  fallbackEndpoints: [],
  responseProcessing: false,
  maxBodyBytes: 16 * 1024 * 1024,
  allow: [],
});

export function routeWithDefaults(r: Partial<RouteModel> & { eppAddress: string }): RouteModel {
  return { ...ROUTE_DEFAULTS, ...r, fallbackEndpoints: [...(r.fallbackEndpoints ?? [])], allow: [...(r.allow ?? [])] };
}
