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
  // Several routes (the `multi-pool` feature); see below.
  /** Route name (scenario `routes[].name`); used in config names. */
  routeName?: string;
  /** Pool name (scenario `pools[].name`): each pool has its own EPP. */
  poolName?: string;
  /** Listener ("gateway") index; 0 is the plane's url. Default 0. */
  listener?: number;
  /** Share of this rule's traffic relative to the other pools of the rule. Default 1. */
  weight?: number;
  /** Multi-pool only: every (route, pool) entry of the plane, this one first. */
  routes?: RouteModel[];
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

// ---- several routes (the `multi-pool` feature) --------------------------------------------
// A plane with several routes is described by one RouteModel whose `routes` lists every
// (route, pool) pair: the first entry equals the object itself (without `routes`, so the model
// stays plain data that JSON can write), so a driver that only renders a
// single route still sees a complete RouteModel (the runner never hands such a driver a
// multi-pool route: it lacks the feature). Entries that share `listener` and `pathPrefix`
// form one rule whose traffic is split across their pools by `weight`.


/** One rule of a plane: a path prefix on a listener, split across one or more pools by weight. */
export interface RouteRule {
  listener: number;
  pathPrefix: string;
  /** The pools of this rule (each a full RouteModel with the pool's EPP and settings), weight > 0. */
  pools: RouteModel[];
}

/** Every (route, pool) entry of a plane: `route.routes`, or the route alone. */
export function planeRoutes(route: RouteModel): RouteModel[] {
  return route.routes && route.routes.length > 0 ? route.routes : [route];
}

/** True when the plane has more than one entry (several routes, pools or listeners). */
export function isMultiRoute(route: RouteModel): boolean {
  return planeRoutes(route).length > 1;
}

/** How many listeners the plane needs (highest listener index + 1). */
export function listenerCount(route: RouteModel): number {
  return Math.max(1, ...planeRoutes(route).map((r) => (r.listener ?? 0) + 1));
}

/**
 * The plane's rules, in declaration order, entries with the same listener and path prefix
 * grouped. Within a listener, renderers that match in order must put longer prefixes first:
 * `byLongestPrefix` sorts a copy that way.
 */
export function routeRules(route: RouteModel): RouteRule[] {
  const rules: RouteRule[] = [];
  for (const r of planeRoutes(route)) {
    const listener = r.listener ?? 0;
    const rule = rules.find((x) => x.listener === listener && x.pathPrefix === r.pathPrefix);
    if (rule) rule.pools.push(r);
    else rules.push({ listener, pathPrefix: r.pathPrefix, pools: [r] });
  }
  return rules;
}

export function byLongestPrefix(rules: readonly RouteRule[]): RouteRule[] {
  return [...rules].sort((a, b) => b.pathPrefix.length - a.pathPrefix.length);
}

/**
 * Integer percentages for a rule's pools (largest remainder), summing to exactly 100: what
 * Envoy's weighted clusters and nginx's split_clients are given. Weights are kept as given
 * when they already sum to 100.
 */
export function weightPercents(pools: readonly RouteModel[]): number[] {
  const w = pools.map((p) => p.weight ?? 1);
  const total = w.reduce((a, b) => a + b, 0);
  const exact = w.map((x) => (x * 100) / total);
  const out = exact.map(Math.floor);
  let left = 100 - out.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0]);
  for (const [, i] of order) {
    if (left <= 0) break;
    out[i]! += 1;
    left--;
  }
  return out;
}
