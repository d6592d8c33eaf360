// The templates of plane files: config files and commands rendered per scenario with that
// scenario's route. A small, logic-less language (mustache's core), documented in
// docs/your-data-plane.md with its one table of variables (PLANE_VARIABLES):
//   {{name}}                  the value (a list renders as "a,b,c"; a flag as true/false)
//   {{#name}}...{{/name}}     a list: once per item, {{.}} the item ({{.host}}, {{.port}});
//                             a flag or text: once when true / non-empty, else nothing
//   {{^name}}...{{/name}}     once when false / empty
// A name that is not a variable is an error naming the file, its line and the variable, found
// when the plane file is loaded (exit 2), never half-way through a run.
import type { RouteModel } from '../../core/route-model.ts';

export interface Endpoint {
  address: string;
  host: string;
  port: string;
}
export type TemplateValue = string | boolean | Endpoint[];
export type TemplateVars = Readonly<Record<string, TemplateValue>>;

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
  ['tools.nginx', 'the nginx binary eppkit uses (EPPKIT_NGINX_BIN or /usr/sbin/nginx)'],
  ['tools.nginxModule', 'eppkit\'s NGINX EPP module (.so) as `eppkit build nginx` made it (or EPPKIT_NGINX_MODULE)'],
  ['tools.envoy', 'the Envoy binary eppkit found (EPPKIT_ENVOY_BIN, PATH or its venv)'],
  ['env.NAME', 'the environment variable NAME (empty when unset)'],
];

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
  for (const tok of tokenize(text)) {
    if (tok.t === 'text') {
      if (tok.v) cur().push(tok);
    } else if (tok.t === 'var') {
      const itemRef = tok.name === '.' || tok.name === '.host' || tok.name === '.port' || tok.name === '.address';
      if (itemRef && !inItem()) problems.push({ line: tok.line, message: `{{${tok.name}}} is only meaningful inside a {{#list}} section` });
      else if (!itemRef && !isKnownVariable(tok.name)) problems.push({ line: tok.line, message: `{{${tok.name}}} is not a variable (see the table in docs/your-data-plane.md)` });
      cur().push(tok);
    } else if (tok.t === 'open') {
      if (!isKnownVariable(tok.name)) problems.push({ line: tok.line, message: `{{${tok.inverted ? '^' : '#'}${tok.name}}} is not a variable (see the table in docs/your-data-plane.md)` });
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

function text(v: TemplateValue | undefined): string {
  if (v === undefined) return '';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return v.map((e) => e.address).join(',');
  return v;
}

function lookup(name: string, vars: TemplateVars): TemplateValue {
  if (name.startsWith('env.')) return process.env[name.slice(4)] ?? '';
  return vars[name] ?? '';
}

function renderNodes(nodes: readonly Node[], vars: TemplateVars, item: Endpoint | undefined): string {
  let out = '';
  for (const n of nodes) {
    if (n.t === 'text') out += n.v;
    else if (n.t === 'var') {
      if (n.name.startsWith('.')) out += n.name === '.' || n.name === '.address' ? (item?.address ?? '') : n.name === '.host' ? (item?.host ?? '') : (item?.port ?? '');
      else out += text(lookup(n.name, vars));
    } else {
      const v = lookup(n.name, vars);
      const truthy = Array.isArray(v) ? v.length > 0 : Boolean(v) && v !== 'false';
      if (n.inverted) {
        if (!truthy) out += renderNodes(n.body, vars, item);
      } else if (Array.isArray(v)) for (const e of v) out += renderNodes(n.body, vars, e);
      else if (truthy) out += renderNodes(n.body, vars, item);
    }
  }
  return out;
}

/** Renders a template already checked by parseTemplate (problems are the caller's). */
export function renderTemplate(template: string, vars: TemplateVars): string {
  return renderNodes(parseTemplate(template).nodes, vars, undefined);
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

/** The variables of one scenario's route (the documented table). */
export function planeVariables(route: RouteModel, dir: string, listen: { host: string; port: number }, tools: PlaneTools, runDir = dir): TemplateVars {
  const epp = endpoint(route.eppAddress);
  const list = (xs: readonly string[]): Endpoint[] => xs.map(endpoint);
  const hostPort = listen.host.includes(':') ? `[${listen.host}]:${listen.port}` : `${listen.host}:${listen.port}`;
  return {
    dir,
    runDir,
    listen: hostPort,
    'listen.host': listen.host,
    'listen.port': String(listen.port),
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
    'tools.nginx': tools.nginx,
    'tools.nginxModule': tools.nginxModule,
    'tools.envoy': tools.envoy,
  };
}
