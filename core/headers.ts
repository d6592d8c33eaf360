// HeaderValue helpers shared by every TypeScript ext_proc peer.
import type { HeaderMap, HeaderValue, HeaderValueOption } from './proto.ts';

/** Reads a header value the way Envoy sends it (raw_value), falling back to `value`. */
export function headerValueText(h: HeaderValue): string {
  if (h.raw_value && h.raw_value.length > 0) return h.raw_value.toString('latin1');
  return h.value ?? '';
}

/** One wire header in Envoy's form: lower-case key, value only in raw_value. */
export function rawHeader(key: string, value: string): HeaderValue {
  return { key: key.toLowerCase(), raw_value: Buffer.from(value, 'latin1') };
}

export function headerMapToObject(map: HeaderMap | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of map?.headers ?? []) {
    const prev = out[h.key];
    const v = headerValueText(h);
    out[h.key] = prev === undefined ? v : `${prev},${v}`;
  }
  return out;
}

/** A set_headers entry that overwrites (append=false), raw_value only. */
export function setHeaderOption(key: string, value: string): HeaderValueOption {
  return { header: rawHeader(key, value), append: { value: false } };
}
