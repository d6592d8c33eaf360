// node-proxy's one configuration schema. Inputs: a config file (YAML or JSON), CLI flags and
// the programmatic API; all three go through `resolveNodeProxyConfig`, which validates with
// zod and reports every problem with its path, then freezes the result.
//
// Precedence for a route's keys: an entry of `routes[]` > a CLI flag > the file's top level
// > the default. The file's top-level route keys are defaults for every route; without
// `routes` the top level is the one route.
import { z } from 'zod';
import { deepFreeze, formatPath, loadConfigFile } from '../../core/config-file.ts';
import { EppkitError, type Problem } from '../../core/errors.ts';
import { BBR_DEFAULTS, ROUTE_DEFAULTS, type RouteModel } from '../../core/route-model.ts';
import { parseAllowEntry, parseEndpoint } from './endpoint.ts';

const hostPort = z.string().refine((s) => parseListen(s) !== undefined, {
  message: 'expected host:port (port 0 = any free port), e.g. 127.0.0.1:0',
});
const endpoint = z.string().refine((s) => parseEndpoint(s) !== undefined, {
  message: 'expected a literal ip:port or [ipv6]:port',
});
const allowEntry = z.string().superRefine((s, ctx) => {
  const r = parseAllowEntry(s);
  if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
});

export const eppTlsSchema = z.strictObject({
  caFile: z.string().min(1).optional(),
  serverName: z.string().min(1).optional(),
  insecureSkipVerify: z.boolean().optional(),
});

/** Body-based routing: `true` for the defaults, or the options (each defaulted). */
export const bbrInputSchema = z.union([
  z.boolean(),
  z.strictObject({
    header: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be a header name').optional(),
    maxBodyBytes: z.number().int().min(1).optional(),
    requireModel: z.boolean().optional(),
  }),
]);

/** Every RouteModel key, all optional (defaults are applied after merging). */
export const routeInputSchema = z.strictObject({
  pathPrefix: z.string().startsWith('/', 'a path prefix starts with /').optional(),
  eppAddress: hostPort.optional(),
  eppTls: eppTlsSchema.optional(),
  failureMode: z.enum(['open', 'close']).optional(),
  timeoutMs: z.number().int().min(1).max(600_000).optional(),
  bodyMode: z.enum(['none', 'buffered', 'streamed']).optional(),
  fallbackEndpoints: z.array(endpoint).optional(),
  responseProcessing: z.boolean().optional(),
  maxBodyBytes: z.number().int().min(0).optional(),
  allow: z.array(allowEntry).optional(),
  subsetHint: z.array(endpoint).optional(),
  bbr: bbrInputSchema.optional(),
  /** Routes that share a path prefix split its traffic by weight (each must set one). */
  weight: z.number().int().min(1).max(1_000_000).optional(),
});
export type RouteInput = z.infer<typeof routeInputSchema>;

const serverKeys = {
  /** host:port to serve on. Default 127.0.0.1:0. */
  listen: hostPort.optional(),
  /** host:port of the admin server (/healthz, /metrics); absent = none. */
  admin: hostPort.optional(),
  /** Processes sharing the port (node:cluster). Default 1 (no cluster). */
  workers: z.number().int().min(1).max(64).optional(),
  /** NGINX Gateway Fabric sidecar mode. Default false. */
  shim: z.boolean().optional(),
  /** Largest request head (request line + headers) accepted, bytes; more = 431. Default 16384. */
  maxHeaderBytes: z.number().int().min(1024).max(1024 * 1024).optional(),
  /** Connect timeout to an upstream endpoint, ms. Default 1000. */
  upstreamConnectTimeoutMs: z.number().int().min(1).max(60_000).optional(),
  /** Time from sending a request upstream to its response headers, ms; more = 504. 0 = no limit (default). */
  upstreamTimeoutMs: z.number().int().min(0).max(3_600_000).optional(),
  /** ext_proc client: the lean node:http2 one (default) or grpc-js. */
  eppClient: z.enum(['grpc-js', 'http2', 'wire']).optional(),
};

/** The config file: server keys, top-level route keys (defaults/one route), optional routes[]. */
export const nodeProxyFileSchema = z.strictObject({
  ...serverKeys,
  ...routeInputSchema.shape,
  routes: z.array(routeInputSchema).optional(),
});
export type NodeProxyFile = z.infer<typeof nodeProxyFileSchema>;

export interface NodeProxyConfig {
  listen: string;
  admin?: string;
  workers: number;
  shim: boolean;
  maxHeaderBytes: number;
  upstreamConnectTimeoutMs: number;
  upstreamTimeoutMs: number;
  eppClient: 'grpc-js' | 'http2' | 'wire';
  /** Ordered longest path prefix first; empty in shim mode. */
  routes: RouteModel[];
  /** Shim mode: the options that still apply (timeout, allow, max body, TLS). */
  shimRoute: Omit<RouteModel, 'eppAddress'>;
}

/** What the programmatic API and the CLI hand in; every key optional. */
export interface NodeProxyInput extends Partial<NodeProxyFile> {
  /** A config file read first; the other keys of this object act as flags over it. */
  configFile?: string;
}

export const SERVER_DEFAULTS = Object.freeze({
  listen: '127.0.0.1:0',
  workers: 1,
  shim: false,
  maxHeaderBytes: 16384,
  upstreamConnectTimeoutMs: 1000,
  upstreamTimeoutMs: 0,
  // The lean client: about a third of grpc-js's CPU per stream (docs/BENCHMARKS.md), which is
  // what lets the embedded default keep up when the machine is busy.
  eppClient: 'wire' as 'grpc-js' | 'http2' | 'wire',
});

export function parseListen(s: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]\s]+)):([0-9]{1,5})$/.exec(s.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: (m[1] ?? m[2]) as string, port };
}

const ROUTE_KEYS = Object.keys(routeInputSchema.shape) as Array<keyof RouteInput>;
const SERVER_KEY_NAMES = Object.keys(serverKeys) as Array<keyof typeof serverKeys>;

function pick<T extends object>(obj: T, keys: readonly (keyof T)[]): Partial<T> {
  const out: Partial<T> = {};
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}

/**
 * Merges file and flags, validates, applies defaults, and freezes. Throws one EppkitError
 * (EPPKIT_CONFIG_INVALID) listing every problem.
 */
export function resolveNodeProxyConfig(input: NodeProxyInput): NodeProxyConfig {
  const { configFile, ...flagsRaw } = input;
  const source = configFile ?? 'node-proxy options';
  const file: NodeProxyFile = configFile ? loadConfigFile(nodeProxyFileSchema, configFile) : {};
  const flagsParsed = nodeProxyFileSchema.safeParse(flagsRaw);
  if (!flagsParsed.success) {
    throw new EppkitError(
      'EPPKIT_CONFIG_INVALID',
      { source: configFile ? `options over ${configFile}` : 'node-proxy options' },
      flagsParsed.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message })),
    );
  }
  const flags = flagsParsed.data;

  const server = { ...SERVER_DEFAULTS, ...pick(file, SERVER_KEY_NAMES), ...pick(flags, SERVER_KEY_NAMES) };
  const base: RouteInput = { ...pick(file, ROUTE_KEYS), ...pick(flags, ROUTE_KEYS) };
  const entries: Array<{ input: RouteInput; path: string }> = [];
  const fileRoutes = file.routes ?? flags.routes;
  if (fileRoutes && fileRoutes.length > 0) {
    fileRoutes.forEach((r, i) => entries.push({ input: { ...base, ...pick(r, ROUTE_KEYS) }, path: `routes[${i}]` }));
  } else {
    entries.push({ input: base, path: '' });
  }

  const problems: Problem[] = [];
  const routes: RouteModel[] = [];
  const seen = new Map<string, string>();
  for (const { input: r, path } of entries) {
    const route: RouteModel = {
      ...ROUTE_DEFAULTS,
      ...r,
      eppAddress: r.eppAddress ?? '',
      fallbackEndpoints: [...(r.fallbackEndpoints ?? [])],
      allow: [...(r.allow ?? [])],
    } as RouteModel;
    if (r.subsetHint) route.subsetHint = [...r.subsetHint];
    else delete route.subsetHint;
    if (r.bbr === undefined || r.bbr === false) delete route.bbr;
    else route.bbr = { ...BBR_DEFAULTS, ...(r.bbr === true ? {} : r.bbr) };
    if (!server.shim && !route.eppAddress) {
      problems.push({
        path: path ? `${path}.eppAddress` : 'eppAddress',
        message: 'no EPP address: give --epp host:port or eppAddress in the config file',
      });
    }
    const prev = seen.get(route.pathPrefix);
    // A repeated prefix is a weighted split when every route of it has a weight.
    const weighted = route.weight !== undefined && routes.filter((x) => x.pathPrefix === route.pathPrefix).every((x) => x.weight !== undefined);
    if (prev !== undefined && !weighted)
      problems.push({ path: path ? `${path}.pathPrefix` : 'pathPrefix', message: `path prefix ${route.pathPrefix} repeats ${prev || 'the top level'} (give every route of it a weight to split its traffic)` });
    seen.set(route.pathPrefix, path);
    routes.push(route);
  }
  if (problems.length > 0) throw new EppkitError('EPPKIT_CONFIG_INVALID', { source }, problems);

  routes.sort((a, b) => b.pathPrefix.length - a.pathPrefix.length);
  const { eppAddress: _ignored, ...shimRoute } = routes[routes.length - 1] ?? { ...ROUTE_DEFAULTS, eppAddress: '' };
  const cfg: NodeProxyConfig = {
    listen: server.listen,
    workers: server.workers,
    shim: server.shim,
    maxHeaderBytes: server.maxHeaderBytes,
    upstreamConnectTimeoutMs: server.upstreamConnectTimeoutMs,
    upstreamTimeoutMs: server.upstreamTimeoutMs,
    eppClient: server.eppClient,
    routes: server.shim ? [] : routes,
    shimRoute: shimRoute as Omit<RouteModel, 'eppAddress'>,
  };
  if (server.admin !== undefined) cfg.admin = server.admin;
  return deepFreeze(cfg);
}
