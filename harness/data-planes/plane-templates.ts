// The templates of plane files: config files and commands rendered per scenario with that
// scenario's route. A small, logic-less language (mustache's core), documented in
// docs/your-data-plane.md with its one table of variables (PLANE_VARIABLES):
//   {{name}}                  the value (a list renders as "a,b,c"; a flag as true/false)
//   {{#name}}...{{/name}}     a list: once per item, {{.}} the item ({{.host}}, {{.port}});
//                             a list of routes (entries, listeners, rules, pools): once per
//                             item, the item's own variables shadowing the outer ones;
//                             a flag or text: once when true / non-empty, else nothing
//   {{^name}}...{{/name}}     once when false / empty
// A name that is not a variable is an error naming the file, its line and the variable, found
// when the plane file is loaded (exit 2), never half-way through a run.
import { byLongestPrefix, listenerCount, planeRoutes, routeRules, weightPercents, type RouteModel } from '../../core/route-model.ts';

export interface Endpoint {
  address: string;
  host: string;
  port: string;
}
/** The variables of one item of a list of routes: a scope of its own. */
export interface Scope {
  readonly vars: TemplateVars;
}
export type TemplateValue = string | boolean | Endpoint[] | Scope[];
export type TemplateVars = Readonly<{ [name: string]: TemplateValue }>;

/** Every variable a plane template may use, with what it is (the documented table). */
export const PLANE_VARIABLES: ReadonlyArray<readonly [name: string, meaning: string]> = [
  ['dir', 'this scenario\'s directory for the plane (absolute): config, logs, pid and temp files go here'],
  ['runDir', 'a short directory for unix sockets (/tmp/epk-…; a socket path over 107 bytes fails), removed when the plane stops'],
  ['listen', 'host:port the plane must listen on (a free loopback port eppkit chose)'],
  ['listen.host', 'its host (127.0.0.1)'],
  ['listen.port', 'its port'],
  ['epp', 'the mock EPP, host:port (gRPC, h2c unless tls)'],
  ['epp.host', 'its host'],
  ['epp.port', 'its port'],
  ['timeoutMs', 'per-message EPP timeout, ms'],
  ['timeoutSeconds', 'the same in seconds ("0.2", "5"), for Envoy durations ("{{timeoutSeconds}}s")'],
  ['failureMode', '"open" (FailOpen: on EPP failure use the pool) or "close" (FailClose: answer an error)'],
  ['failOpen', 'flag: failureMode is open (true/false; a section)'],
  ['bodyMode', '"none" (headers only), "buffered" (headers, then the whole body), "streamed" (full-duplex chunks)'],
  ['bodyNone', 'flag: bodyMode is none'],
  ['bodyBuffered', 'flag: bodyMode is buffered'],
  ['bodyStreamed', 'flag: bodyMode is streamed'],
  ['envoy.bodyMode', 'bodyMode as Envoy\'s ProcessingMode names it: NONE, BUFFERED, FULL_DUPLEX_STREAMED'],
  ['envoy.trailerMode', 'SEND with FULL_DUPLEX_STREAMED (Envoy requires it), else SKIP'],
  ['pool', 'list: the fail-open pool (ip:port, IPv6 as [::1]:port); empty unless the scenario has one'],
  ['pool.any', 'flag: pool is not empty'],
  ['fallback', 'the same list as pool (the route model calls it fallbackEndpoints)'],
  ['fallback.any', 'flag: fallback is not empty'],
  ['allow', 'list: endpoints (ip:port) or CIDRs the EPP may pick; empty = any'],
  ['allow.any', 'flag: allow is not empty'],
  ['subsetHint', 'list: ip:port to send as the subset hint (metadata envoy.lb.subset_hint); empty = none'],
  ['subsetHint.any', 'flag: subsetHint is not empty'],
  ['responseProcessing', 'flag: send the response headers to the EPP with the served endpoint'],
  ['maxBodyBytes', 'largest request body, bytes'],
  ['maxBodyKiB', 'the same in KiB (nginx sizes: "{{maxBodyKiB}}k")'],
  ['pathPrefix', 'the route\'s path prefix ("/")'],
  ['bbr', 'flag: body-based routing: put the body\'s top-level "model" into a request header before the EPP call'],
  ['bbr.header', 'the header it goes into (X-Gateway-Model-Name)'],
  ['bbr.maxBodyKiB', 'body bytes scanned for the model at most, KiB'],
  ['bbr.extProc', 'with bbrExtProc: the BBR ext_proc server eppkit started for this scenario, host:port'],
  ['bbr.extProc.host', 'its host'],
  ['bbr.extProc.port', 'its port'],
  ['bbr.requireModel', 'flag: no usable model = 400 (413 beyond the scan limit) instead of passing on without the header'],
  ['tls', 'flag: TLS to the EPP (else plaintext h2c)'],
  ['tls.caFile', 'PEM CA file to verify the EPP with (empty = system roots)'],
  ['tls.serverName', 'SNI / name to verify (empty = the EPP host)'],
  ['tls.insecureSkipVerify', 'flag: skip certificate verification (tests only)'],
  ['multi', 'flag: the scenario has several routes, pools or listeners (feature multi-pool); the lists below describe them, and for one route they hold that one'],
  ['entries', 'list: every (route, pool) entry, each with the entry variables below (its own EPP, timeout, failure mode, body mode, pool, …)'],
  ['listeners', 'list: the listeners ("gateways"), each with the listener variables below; [0] listens on {{listen}}'],
  ['tools.nginx', 'the nginx binary eppkit uses (EPPKIT_NGINX_BIN or /usr/sbin/nginx)'],
  ['tools.nginxModule', 'eppkit\'s NGINX EPP module (.so) as `eppkit build nginx` made it (or EPPKIT_NGINX_MODULE)'],
  ['tools.envoy', 'the Envoy binary eppkit found (EPPKIT_ENVOY_BIN, PATH or its venv)'],
  ['env.NAME', 'the environment variable NAME (empty when unset)'],
];

/** The variables of one item of `entries` (and of a rule's `pools`); the single-route names mean the same, for this entry. */
export const ENTRY_VARIABLES: ReadonlyArray<readonly [name: string, meaning: string]> = [
  ['index', 'the entry\'s number (0, 1, …): suffix names with it (upstream picked_{{index}})'],
  ['first', 'flag: the first item of its list'],
  ['last', 'flag: the last item of its list (split_clients\' `*` line)'],
  ['routeName', 'the scenario\'s name of its route'],
  ['poolName', 'the scenario\'s name of its pool'],
  ['listener', 'the index of the listener its route is on'],
  ['weight', 'its weight within its rule'],
  ['weightPercent', 'the same as an integer percentage; a rule\'s pools sum to exactly 100'],
  ['bind', 'host:port where a two-tier plane serves this entry by itself: {{listen}} when there is one entry, else a free loopback port of its own'],
  ['bind.host', 'its host'],
  ['bind.port', 'its port'],
  ['epp / epp.host / epp.port / timeoutMs / timeoutSeconds / failureMode / failOpen / bodyMode / bodyNone / bodyBuffered / bodyStreamed / envoy.bodyMode / envoy.trailerMode / pool / pool.any / fallback / fallback.any / allow / allow.any / subsetHint / subsetHint.any / responseProcessing / maxBodyBytes / maxBodyKiB / pathPrefix / bbr… / tls…', 'as in the table above, for this entry'],
];

/** The variables of one item of `listeners`. */
export const LISTENER_VARIABLES: ReadonlyArray<readonly [name: string, meaning: string]> = [
  ['index', 'the listener\'s number (0 = the one on {{listen}})'],
  ['first', 'flag: the first listener'],
  ['last', 'flag: the last listener'],
  ['listen / listen.host / listen.port', 'where this listener must listen (a free loopback port eppkit chose)'],
  ['rules', 'list: its rules, longest path prefix first (match them in this order), each with the rule variables below'],
  ['hasRoot', 'flag: one of its rules has the path prefix "/" (else answer 404 for other paths)'],
  ['maxBodyBytes / maxBodyKiB', 'the largest body limit of its entries'],
];

/** The variables of one item of a listener's `rules`. */
export const RULE_VARIABLES: ReadonlyArray<readonly [name: string, meaning: string]> = [
  ['index', 'the rule\'s number across all listeners (split_clients $split_{{index}})'],
  ['first', 'flag: the first rule of its listener'],
  ['last', 'flag: the last rule of its listener'],
  ['pathPrefix', 'its path prefix (Gateway API PathPrefix: whole path segments)'],
  ['root', 'flag: pathPrefix is "/"'],
  ['split', 'flag: its traffic is split across several pools by weight (a pool per request)'],
  ['pools', 'list: its entries, each with the entry variables above'],
];

/** Names a table row documents ("a / b / c" rows document several). */
function names(table: ReadonlyArray<readonly [string, string]>): string[] {
  return table.flatMap(([n]) => n.split(' / ').map((x) => x.replace(/…$/, '')));
}
const ROUTE_NAMES = PLANE_VARIABLES.map(([n]) => n).filter((n) => !['dir', 'runDir', 'listen', 'listen.host', 'listen.port', 'multi', 'entries', 'listeners'].includes(n) && !n.startsWith('tools.') && n !== 'env.NAME');
const ENTRY_NAMES = new Set([...names(ENTRY_VARIABLES), ...ROUTE_NAMES]);
const LISTENER_NAMES = new Set(names(LISTENER_VARIABLES));
const RULE_NAMES = new Set(names(RULE_VARIABLES));
/** The item variables of each list of routes, by the list's name. */
const ITEM_NAMES: Readonly<Record<string, ReadonlySet<string>>> = { entries: ENTRY_NAMES, pools: ENTRY_NAMES, listeners: LISTENER_NAMES, rules: RULE_NAMES };

const KNOWN = new Set(PLANE_VARIABLES.map(([n]) => n));

export function isKnownVariable(name: string): boolean {
  return KNOWN.has(name) || /^env\.[A-Za-z_][A-Za-z0-9_]*$/.test(name);
}

export interface TemplateProblem {
  line: number;
  message: string;
}

type Token = { t: 'text'; v: string } | { t: 'var'; name: string; line: number } | { t: 'open'; name: string; inverted: boolean; line: number } | { t: 'close'; name: string; line: number };
type Node = { t: 'text'; v: string } | { t: 'var'; name: string; line: number } | { t: 'section'; name: string; inverted: boolean; line: number; body: Node[] };

const TAG = /\{\{\s*([#^/]?)\s*([A-Za-z_.][A-Za-z0-9_.-]*)\s*\}\}/g;

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let last = 0;
  let line = 1;
  for (const m of text.matchAll(TAG)) {
    const before = text.slice(last, m.index);
    out.push({ t: 'text', v: before });
    line += before.split('\n').length - 1;
    const [, sigil, name = ''] = m;
    if (sigil === '#' || sigil === '^') out.push({ t: 'open', name, inverted: sigil === '^', line });
    else if (sigil === '/') out.push({ t: 'close', name, line });
    else out.push({ t: 'var', name, line });
    last = (m.index ?? 0) + m[0].length;
  }
  out.push({ t: 'text', v: text.slice(last) });
  return out;
}

/** Parses a template; every problem (unknown variable, unbalanced section) is returned at once. */
export function parseTemplate(text: string): { nodes: Node[]; problems: TemplateProblem[] } {
  const problems: TemplateProblem[] = [];
  const root: Node[] = [];
  const stack: Array<{ name: string; line: number; body: Node[]; inverted: boolean }> = [];
  const cur = (): Node[] => stack[stack.length - 1]?.body ?? root;
  const inItem = (): boolean => stack.some((s) => !s.inverted);
  // A name is known globally, or as an item variable of an enclosing list of routes.
  const known = (name: string): boolean => isKnownVariable(name) || stack.some((s) => !s.inverted && ITEM_NAMES[s.name]?.has(name) === true);
  for (const tok of tokenize(text)) {
    if (tok.t === 'text') {
      if (tok.v) cur().push(tok);
    } else if (tok.t === 'var') {
      const itemRef = tok.name === '.' || tok.name === '.host' || tok.name === '.port' || tok.name === '.address';
      if (itemRef && !inItem()) problems.push({ line: tok.line, message: `{{${tok.name}}} is only meaningful inside a {{#list}} section` });
      else if (!itemRef && !known(tok.name)) problems.push({ line: tok.line, message: `{{${tok.name}}} is not a variable (see the table in docs/your-data-plane.md)` });
      cur().push(tok);
    } else if (tok.t === 'open') {
      if (!known(tok.name)) problems.push({ line: tok.line, message: `{{${tok.inverted ? '^' : '#'}${tok.name}}} is not a variable (see the table in docs/your-data-plane.md)` });
      const sec = { name: tok.name, line: tok.line, body: [] as Node[], inverted: tok.inverted };
      cur().push({ t: 'section', name: tok.name, inverted: tok.inverted, line: tok.line, body: sec.body });
      stack.push(sec);
    } else {
      const top = stack.pop();
      if (!top) problems.push({ line: tok.line, message: `{{/${tok.name}}} closes no section` });
      else if (top.name !== tok.name) problems.push({ line: tok.line, message: `{{/${tok.name}}} closes {{#${top.name}}} of line ${top.line}` });
    }
  }
  for (const s of stack) problems.push({ line: s.line, message: `{{#${s.name}}} is never closed ({{/${s.name}}})` });
  return { nodes: root, problems };
}

function isScopeList(v: TemplateValue): v is Scope[] {
  return Array.isArray(v) && v.length > 0 && 'vars' in (v[0] as object);
}

function text(v: TemplateValue | undefined): string {
  if (v === undefined) return '';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return isScopeList(v) ? '' : (v as Endpoint[]).map((e) => e.address).join(',');
  return v;
}

/** The innermost scope that has the name wins (an entry's {{epp}} inside {{#entries}}). */
function lookup(name: string, scopes: readonly TemplateVars[]): TemplateValue {
  if (name.startsWith('env.')) return process.env[name.slice(4)] ?? '';
  for (let i = scopes.length - 1; i >= 0; i--) {
    const v = scopes[i]?.[name];
    if (v !== undefined) return v;
  }
  return '';
}

function renderNodes(nodes: readonly Node[], scopes: readonly TemplateVars[], item: Endpoint | undefined): string {
  let out = '';
  for (const n of nodes) {
    if (n.t === 'text') out += n.v;
    else if (n.t === 'var') {
      if (n.name.startsWith('.')) out += n.name === '.' || n.name === '.address' ? (item?.address ?? '') : n.name === '.host' ? (item?.host ?? '') : (item?.port ?? '');
      else out += text(lookup(n.name, scopes));
    } else {
      const v = lookup(n.name, scopes);
      const truthy = Array.isArray(v) ? v.length > 0 : Boolean(v) && v !== 'false';
      if (n.inverted) {
        if (!truthy) out += renderNodes(n.body, scopes, item);
      } else if (isScopeList(v)) for (const sc of v) out += renderNodes(n.body, [...scopes, sc.vars], item);
      else if (Array.isArray(v)) for (const e of v as Endpoint[]) out += renderNodes(n.body, scopes, e);
      else if (truthy) out += renderNodes(n.body, scopes, item);
    }
  }
  return out;
}

/** Renders a template already checked by parseTemplate (problems are the caller's). */
export function renderTemplate(template: string, vars: TemplateVars): string {
  return renderNodes(parseTemplate(template).nodes, [vars], undefined);
}

function endpoint(address: string): Endpoint {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:]+):(\d+)$/.exec(address);
  return { address, host: m?.[1] ?? address, port: m?.[2] ?? '' };
}

export interface PlaneTools {
  nginx: string;
  nginxModule: string;
  envoy: string;
}

/** Where a plane listens: one address per listener, and one per entry for two-tier planes. */
export interface PlaneAddresses {
  /** One host:port per listener ([0] = {{listen}}). */
  listeners: ReadonlyArray<{ host: string; port: number }>;
  /** One per (route, pool) entry when there are several: {{bind}} of that entry. */
  entries?: ReadonlyArray<{ host: string; port: number }>;
}

function hostPortOf(a: { host: string; port: number }): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** The variables that describe one route entry (the single-route names of the table). */
function routeVariables(route: RouteModel): Record<string, TemplateValue> {
  const epp = endpoint(route.eppAddress);
  const list = (xs: readonly string[]): Endpoint[] => xs.map(endpoint);
  return {
    epp: route.eppAddress,
    'epp.host': epp.host,
    'epp.port': epp.port,
    timeoutMs: String(route.timeoutMs),
    timeoutSeconds: String(route.timeoutMs / 1000),
    failureMode: route.failureMode,
    failOpen: route.failureMode === 'open',
    bodyMode: route.bodyMode,
    bodyNone: route.bodyMode === 'none',
    bodyBuffered: route.bodyMode === 'buffered',
    bodyStreamed: route.bodyMode === 'streamed',
    'envoy.bodyMode': route.bodyMode === 'none' ? 'NONE' : route.bodyMode === 'buffered' ? 'BUFFERED' : 'FULL_DUPLEX_STREAMED',
    'envoy.trailerMode': route.bodyMode === 'streamed' ? 'SEND' : 'SKIP',
    pool: list(route.fallbackEndpoints),
    'pool.any': route.fallbackEndpoints.length > 0,
    fallback: list(route.fallbackEndpoints),
    'fallback.any': route.fallbackEndpoints.length > 0,
    allow: list(route.allow),
    'allow.any': route.allow.length > 0,
    subsetHint: list(route.subsetHint ?? []),
    'subsetHint.any': (route.subsetHint ?? []).length > 0,
    responseProcessing: route.responseProcessing,
    maxBodyBytes: String(route.maxBodyBytes),
    maxBodyKiB: String(Math.ceil(route.maxBodyBytes / 1024)),
    pathPrefix: route.pathPrefix,
    bbr: route.bbr !== undefined,
    'bbr.header': route.bbr?.header ?? '',
    'bbr.maxBodyKiB': route.bbr ? String(Math.ceil(route.bbr.maxBodyBytes / 1024)) : '',
    'bbr.requireModel': route.bbr?.requireModel ?? false,
    'bbr.extProc': route.bbr?.extProcAddress ?? '',
    'bbr.extProc.host': route.bbr?.extProcAddress ? endpoint(route.bbr.extProcAddress).host : '',
    'bbr.extProc.port': route.bbr?.extProcAddress ? endpoint(route.bbr.extProcAddress).port : '',
    tls: route.eppTls !== undefined,
    'tls.caFile': route.eppTls?.caFile ?? '',
    'tls.serverName': route.eppTls?.serverName ?? '',
    'tls.insecureSkipVerify': route.eppTls?.insecureSkipVerify ?? false,
  };
}

function positional<T>(xs: readonly T[], f: (x: T, i: number) => Record<string, TemplateValue>): Scope[] {
  return xs.map((x, i) => ({ vars: { ...f(x, i), index: String(i), first: i === 0, last: i === xs.length - 1 } }));
}

/** The variables of one scenario's route (the documented tables). */
export function planeVariables(route: RouteModel, dir: string, listen: { host: string; port: number } | PlaneAddresses, tools: PlaneTools, runDir = dir): TemplateVars {
  const addrs: PlaneAddresses = 'listeners' in listen ? listen : { listeners: [listen] };
  const main = addrs.listeners[0] ?? { host: '127.0.0.1', port: 0 };
  const entries = planeRoutes(route);
  const index = new Map(entries.map((e, k) => [e, k]));
  const rules = routeRules(route);
  const percents = new Map<RouteModel, number>();
  for (const r of rules) weightPercents(r.pools).forEach((p, j) => percents.set(r.pools[j] as RouteModel, p));
  const entryScope = (e: RouteModel): Scope => {
    const k = index.get(e) ?? 0;
    const bind = entries.length > 1 ? (addrs.entries?.[k] ?? main) : main;
    return {
      vars: {
        ...routeVariables(e),
        index: String(k),
        first: k === 0,
        last: k === entries.length - 1,
        routeName: e.routeName ?? '',
        poolName: e.poolName ?? '',
        listener: String(e.listener ?? 0),
        weight: String(e.weight ?? 1),
        weightPercent: String(percents.get(e) ?? 100),
        bind: hostPortOf(bind),
        'bind.host': bind.host,
        'bind.port': String(bind.port),
      },
    };
  };
  const entryScopes = entries.map(entryScope);
  // A rule's pools reuse these scopes, with first/last within the rule.
  const listeners = Array.from({ length: listenerCount(route) }, (_, l) => l);
  return {
    dir,
    runDir,
    listen: hostPortOf(main),
    'listen.host': main.host,
    'listen.port': String(main.port),
    ...routeVariables(route),
    multi: entries.length > 1,
    entries: entryScopes,
    listeners: positional(listeners, (l) => {
      const a = addrs.listeners[l] ?? main;
      const mine = byLongestPrefix(rules.filter((r) => r.listener === l));
      const maxBody = Math.max(0, ...mine.flatMap((r) => r.pools.map((e) => e.maxBodyBytes)));
      return {
        listen: hostPortOf(a),
        'listen.host': a.host,
        'listen.port': String(a.port),
        hasRoot: mine.some((r) => r.pathPrefix === '/'),
        maxBodyBytes: String(maxBody),
        maxBodyKiB: String(Math.ceil(maxBody / 1024)),
        rules: positional(mine, (r) => ({
          pathPrefix: r.pathPrefix,
          root: r.pathPrefix === '/',
          split: r.pools.length > 1,
          // first/last within the rule's pools (split_clients' last line is `*`).
          pools: r.pools.map((e, j) => ({ vars: { ...(entryScopes[index.get(e) ?? 0] as Scope).vars, first: j === 0, last: j === r.pools.length - 1 } })),
        })).map((sc, i) => ({ vars: { ...sc.vars, index: String(rules.indexOf(mine[i] as (typeof rules)[number])) } })),
      };
    }),
    'tools.nginx': tools.nginx,
    'tools.nginxModule': tools.nginxModule,
    'tools.envoy': tools.envoy,
  };
}
