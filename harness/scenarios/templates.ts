// {{...}} templates in scenario strings, resolved once the backends and the mock EPP run:
//   {{pod-a}} -> ip:port of backend pod-a ([::1]:port for IPv6), {{pod-a.ip}}, {{pod-a.port}},
//   {{epp}} -> the mock EPP's ip:port,
//   {{timeoutMs}}, {{timeoutMs*4}}, {{timeoutMs/10}}, {{timeoutMs+500}} -> ms relative to the EPP
//   timeout the plane really runs with (rounded to whole ms).
import { EppkitError } from '../../core/errors.ts';

export interface TemplateContext {
  backends: ReadonlyMap<string, { ip: string; port: number; address: string }>;
  epp: string;
  /** The EPP timeout the plane runs with (the scenario's, or the plane's fixed one). */
  timeoutMs?: number;
}

const TIMING = /\{\{\s*timeoutMs\s*(?:([*/+-])\s*(\d+(?:\.\d+)?))?\s*\}\}/g;

function relative(timeoutMs: number, op: string | undefined, n: string | undefined): number {
  const x = Number(n);
  const v = op === '*' ? timeoutMs * x : op === '/' ? timeoutMs / x : op === '+' ? timeoutMs + x : op === '-' ? timeoutMs - x : timeoutMs;
  return Math.max(0, Math.round(v));
}

/** A timing field: ms as written, or "{{timeoutMs*N}}" resolved with the plane's timeout. */
export function timingMs(v: number | string, ctx: Pick<TemplateContext, 'timeoutMs'>): number {
  if (typeof v === 'number') return v;
  const out = Number(resolveString(v, { backends: new Map(), epp: '', ...ctx }));
  if (!Number.isFinite(out)) throw new EppkitError('EPPKIT_USAGE', { reason: `"${v}" is not a timing ("{{timeoutMs*N}}")` });
  return out;
}

const TEMPLATE = /\{\{\s*([a-z0-9-]+)(?:\.(ip|port))?\s*\}\}/g;

export function resolveString(s: string, ctx: TemplateContext): string {
  const timed = s.replace(TIMING, (whole, op: string | undefined, n: string | undefined) => {
    if (ctx.timeoutMs === undefined) throw new EppkitError('EPPKIT_USAGE', { reason: `template ${whole} used before the EPP timeout is known` });
    return String(relative(ctx.timeoutMs, op, n));
  });
  return timed.replace(TEMPLATE, (whole, name: string, part: string | undefined) => {
    if (name === 'epp' && !part) return ctx.epp;
    const b = ctx.backends.get(name);
    if (!b) throw new EppkitError('EPPKIT_USAGE', { reason: `template ${whole} names no backend` });
    return part === 'ip' ? b.ip : part === 'port' ? String(b.port) : b.address;
  });
}

/** Deep copy with every string's templates resolved. */
export function resolveTemplates<T>(v: T, ctx: TemplateContext): T {
  if (typeof v === 'string') return resolveString(v, ctx) as T;
  if (Array.isArray(v)) return v.map((x) => resolveTemplates(x, ctx)) as T;
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[resolveString(k, ctx)] = resolveTemplates(x, ctx);
    return out as T;
  }
  return v;
}

/** Resolves templates with placeholder addresses (127.0.0.2:1, ...) to validate before running. */
export function placeholderTemplate<T>(v: T, backendNames: readonly string[]): T {
  const backends = new Map(backendNames.map((n, i) => [n, { ip: `127.0.0.${2 + (i % 250)}`, port: 1 + i, address: `127.0.0.${2 + (i % 250)}:${1 + i}` }]));
  try {
    return resolveTemplates(v, { backends, epp: '127.0.0.1:1', timeoutMs: 1000 });
  } catch {
    return v;
  }
}
