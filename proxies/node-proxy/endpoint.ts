// Endpoint parsing and the allowlist: the EPP's answer is untrusted network input, so every
// entry must be a literal ip:port (no host names: a name would let an EPP steer traffic
// anywhere DNS points) and, when an allowlist is configured, inside it.
import { isIPv4, isIPv6 } from 'node:net';

export interface Endpoint {
  /** Literal IP without brackets. */
  host: string;
  port: number;
  /** Canonical text: `1.2.3.4:80` or `[::1]:80`. */
  text: string;
  family: 4 | 6;
}

/** Parses one `ip:port` or `[ipv6]:port`; undefined when it is anything else. */
export function parseEndpoint(raw: string): Endpoint | undefined {
  const s = raw.trim();
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0 || s[close + 1] !== ':') return undefined;
    host = s.slice(1, close);
    portText = s.slice(close + 2);
    if (!isIPv6(host)) return undefined;
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) return undefined;
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (!isIPv4(host)) return undefined;
  }
  if (!/^[0-9]{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port < 1 || port > 65535) return undefined;
  const family = isIPv4(host) ? 4 : 6;
  return { host, port, family, text: family === 4 ? `${host}:${port}` : `[${host}]:${port}` };
}

export interface EndpointListResult {
  endpoints: Endpoint[];
  /** Entries that did not parse. */
  invalid: string[];
  /** Entries that parsed but are outside the allowlist. */
  refused: string[];
}

/** Splits the EPP's comma-separated list, keeping order; empty entries are ignored. */
export function parseEndpointList(value: string, allow: Allowlist): EndpointListResult {
  const out: EndpointListResult = { endpoints: [], invalid: [], refused: [] };
  for (const part of value.split(',')) {
    const t = part.trim();
    if (t === '') continue;
    const ep = parseEndpoint(t);
    if (!ep) out.invalid.push(t);
    else if (!allow.permits(ep)) out.refused.push(ep.text);
    else out.endpoints.push(ep);
  }
  return out;
}

// ---- allowlist: CIDRs and exact ip:port entries ----

function ipToBigInt(ip: string): { value: bigint; bits: number } | undefined {
  if (isIPv4(ip)) {
    let v = 0n;
    for (const p of ip.split('.')) v = (v << 8n) | BigInt(Number(p));
    return { value: v, bits: 32 };
  }
  if (!isIPv6(ip)) return undefined;
  let text = ip;
  // An IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1]) {
    const parts = v4[1].split('.').map(Number);
    const hi = (((parts[0] ?? 0) << 8) | (parts[1] ?? 0)).toString(16);
    const lo = (((parts[2] ?? 0) << 8) | (parts[3] ?? 0)).toString(16);
    text = `${text.slice(0, -v4[1].length)}${hi}:${lo}`;
  }
  const [head = '', tail] = text.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(parseInt(g, 16));
  return { value: v, bits: 128 };
}

interface CidrRule {
  kind: 'cidr';
  value: bigint;
  prefix: number;
  bits: number;
}
interface ExactRule {
  kind: 'exact';
  text: string;
}

/** Parses one allowlist entry; returns an error message for a bad one. */
export function parseAllowEntry(raw: string): CidrRule | ExactRule | string {
  const s = raw.trim();
  const slash = s.indexOf('/');
  if (slash >= 0) {
    const ip = ipToBigInt(s.slice(0, slash));
    const prefixText = s.slice(slash + 1);
    if (!ip) return `"${s}" is not a CIDR (ip/prefix)`;
    if (!/^[0-9]{1,3}$/.test(prefixText) || Number(prefixText) > ip.bits) return `"${s}" has a bad prefix length`;
    const prefix = Number(prefixText);
    return { kind: 'cidr', value: ip.value, prefix, bits: ip.bits };
  }
  const ep = parseEndpoint(s);
  if (ep) return { kind: 'exact', text: ep.text };
  const ip = ipToBigInt(s);
  if (ip) return { kind: 'cidr', value: ip.value, prefix: ip.bits, bits: ip.bits };
  return `"${s}" is neither a CIDR, an IP nor ip:port`;
}

export class Allowlist {
  private readonly rules: Array<CidrRule | ExactRule>;

  constructor(entries: readonly string[]) {
    this.rules = [];
    for (const e of entries) {
      const r = parseAllowEntry(e);
      if (typeof r === 'string') throw new Error(r);
      this.rules.push(r);
    }
  }

  get empty(): boolean {
    return this.rules.length === 0;
  }

  permits(ep: Endpoint): boolean {
    if (this.rules.length === 0) return true;
    const ip = ipToBigInt(ep.host);
    for (const r of this.rules) {
      if (r.kind === 'exact') {
        if (r.text === ep.text) return true;
      } else if (ip && ip.bits === r.bits) {
        const shift = BigInt(r.bits - r.prefix);
        if (ip.value >> shift === r.value >> shift) return true;
      }
    }
    return false;
  }
}
