// Header handling between client, EPP and upstream: the ext_proc view of a request (Envoy's
// form), hop-by-hop removal (RFC 9110 §7.6.1), X-Forwarded-*, and applying HeaderMutations.
// Works on node's rawHeaders so order, duplicates and bytes (latin1) survive untouched.
import type { IncomingMessage } from 'node:http';
import { headerValueText } from '../../core/headers.ts';
import type { HeaderMutation, HeaderValue } from '../../core/proto.ts';

/** RFC 9110 §7.6.1 plus the de-facto ones every proxy drops. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'proxy-connection', 'keep-alive', 'te', 'transfer-encoding', 'upgrade', 'trailer']);

/** Lower-cased names this message's Connection header(s) mark hop-by-hop. */
export function connectionNamed(raw: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() !== 'connection') continue;
    for (const t of (raw[i + 1] as string).split(',')) {
      const n = t.trim().toLowerCase();
      if (n) out.add(n);
    }
  }
  return out;
}

/** [name, value] pairs without hop-by-hop headers (names as sent). */
export function endToEnd(raw: readonly string[]): Array<[string, string]> {
  const named = connectionNamed(raw);
  const out: Array<[string, string]> = [];
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i] as string;
    const lk = k.toLowerCase();
    if (HOP_BY_HOP.has(lk) || named.has(lk)) continue;
    out.push([k, raw[i + 1] as string]);
  }
  return out;
}

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

/** The request as Envoy shows it to ext_proc: pseudo-headers then lower-case headers, raw_value only. */
export function extProcRequestHeaders(req: IncomingMessage, scheme: string, drop?: ReadonlySet<string>): HeaderValue[] {
  const raw = req.rawHeaders;
  let authority = '';
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() === 'host') {
      authority = raw[i + 1] as string;
      break;
    }
  }
  const out: HeaderValue[] = [
    { key: ':method', raw_value: latin1(req.method ?? 'GET') },
    { key: ':path', raw_value: latin1(req.url ?? '/') },
    { key: ':authority', raw_value: latin1(authority) },
    { key: ':scheme', raw_value: latin1(scheme) },
  ];
  const named = connectionNamed(raw);
  for (let i = 0; i < raw.length; i += 2) {
    const k = (raw[i] as string).toLowerCase();
    if (k === 'host' || HOP_BY_HOP.has(k) || named.has(k) || drop?.has(k)) continue;
    out.push({ key: k, raw_value: latin1(raw[i + 1] as string) });
  }
  return out;
}

/** Response headers for the response-headers phase (lower-case, hop-by-hop removed). */
export function extProcResponseHeaders(raw: readonly string[]): HeaderValue[] {
  return endToEnd(raw).map(([k, v]) => ({ key: k.toLowerCase(), raw_value: latin1(v) }));
}

/**
 * A mutable header list that keeps order and case; mutation semantics as Envoy applies them:
 * `append` true adds a value, otherwise the header is overwritten; removes by name.
 */
export class HeaderList {
  readonly entries: Array<[string, string]>;
  constructor(entries: Array<[string, string]>) {
    this.entries = entries;
  }
  get(name: string): string | undefined {
    const n = name.toLowerCase();
    return this.entries.find(([k]) => k.toLowerCase() === n)?.[1];
  }
  remove(name: string): void {
    const n = name.toLowerCase();
    for (let i = this.entries.length - 1; i >= 0; i--) if ((this.entries[i] as [string, string])[0].toLowerCase() === n) this.entries.splice(i, 1);
  }
  set(name: string, value: string): void {
    this.remove(name);
    this.entries.push([name, value]);
  }
  add(name: string, value: string): void {
    this.entries.push([name, value]);
  }
  /** Applies one mutation; pseudo-headers are returned for the caller (they are not headers upstream). */
  apply(m: HeaderMutation, pseudo: Map<string, string>): void {
    for (const name of m.remove_headers ?? []) {
      if (!name.startsWith(':')) this.remove(name);
    }
    for (const o of m.set_headers ?? []) {
      const h: HeaderValue | undefined = o.header;
      if (!h?.key) continue;
      const v = headerValueText(h);
      if (h.key.startsWith(':')) {
        pseudo.set(h.key.toLowerCase(), v);
        continue;
      }
      // A value HTTP cannot carry (a control byte: CR and LF would split headers) or a name that
      // is not a token is ignored, as Envoy ignores an invalid mutation.
      if (/[^\t\x20-\x7e\x80-\xff]/.test(v) || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(h.key)) continue;
      // Envoy drops an empty value unless keep_empty_value is set.
      if (v === '' && !o.keep_empty_value) continue;
      if (o.append?.value !== undefined) {
        if (o.append.value) this.add(h.key, v);
        else this.set(h.key, v);
        continue;
      }
      switch (o.append_action) {
        case 0: // APPEND_IF_EXISTS_OR_ADD
          this.add(h.key, v);
          break;
        case 1: // ADD_IF_ABSENT
          if (this.get(h.key) === undefined) this.add(h.key, v);
          break;
        case 3: // OVERWRITE_IF_EXISTS
          if (this.get(h.key) !== undefined) this.set(h.key, v);
          break;
        default: // OVERWRITE_IF_EXISTS_OR_ADD, and Envoy's default for ext_proc (append=false)
          this.set(h.key, v);
      }
    }
  }
  /** Flat [k, v, k, v], as writeHead takes it: duplicates and order kept. */
  flat(): string[] {
    const out: string[] = [];
    for (const [k, v] of this.entries) out.push(k, v);
    return out;
  }
}
