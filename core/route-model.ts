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

/**
 * Body-based routing (BBR): the top-level `model` string of a JSON request body is written into
 * a request header before the EPP is asked, so the EPP and the backend both see it.
 */
export interface BbrOptions {
  /** Header the model goes into (a client's own copy is replaced). Default X-Gateway-Model-Name. */
  header: string;
  /** How many body bytes are scanned for the model at most. Default 16 MiB. */
  maxBodyBytes: number;
  /** No usable model in a body: answer 400 (413 when not within maxBodyBytes) instead of passing on without the header. Default false. */
  requireModel: boolean;
  /**
   * Planes that chain a BBR ext_proc server in front of the EPP (Envoy with two ext_proc
   * filters): its gRPC host:port. The harness starts a mock EPP in the BBR role and sets it.
   */
  extProcAddress?: string;
}

export const BBR_DEFAULTS: BbrOptions = Object.freeze({ header: 'X-Gateway-Model-Name', maxBodyBytes: 16 * 1024 * 1024, requireModel: false });

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
  /** Body-based routing before the EPP call; absent = off. */
  bbr?: BbrOptions;
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
