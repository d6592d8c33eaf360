// Body-based routing (node-proxy, the mock EPP's BBR role): the top-level `model` string of a JSON request body,
// with the same semantics as the nginx module's scanner (proxies/nginx-epp/epp-core/src/bbr.rs):
// one pass over the bytes before the model, nested values skipped undecoded, nothing after the
// model parsed or validated, at most `limit` bytes scanned.

export const DEFAULT_MODEL_HEADER = 'X-Gateway-Model-Name';
export const MAX_MODEL_LEN = 1024;

export type BbrStatus = 'ok' | 'no_body' | 'no_model' | 'not_json' | 'not_string' | 'bad_model' | 'too_large';

export type ScanOutcome =
  | { status: 'ok'; model: string }
  | { status: 'no_body' | 'no_model' | 'not_string' | 'too_large' }
  | { status: 'not_json'; at: number }
  | { status: 'bad_model'; why: string };

class Stop {
  readonly outcome: ScanOutcome;
  constructor(outcome: ScanOutcome) {
    this.outcome = outcome;
  }
}

const isWs = (b: number): boolean => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;

/** Scans `body` (already read whole) for the top-level `model`. */
export function scanModel(body: Buffer, limit = Number.MAX_SAFE_INTEGER): ScanOutcome {
  if (body.length === 0) return { status: 'no_body' };
  const end = Math.min(body.length, limit);
  let i = 0;
  const peek = (): number => {
    if (i >= end) throw new Stop(i >= limit && body.length > limit ? { status: 'too_large' } : { status: 'not_json', at: i });
    return body[i] as number;
  };
  const fail = (): never => {
    throw new Stop({ status: 'not_json', at: i });
  };
  const skipWs = (): void => {
    while (isWs(peek())) i++;
  };
  // A skipped string, from its opening quote: jumps from quote to quote (indexOf), stepping over
  // escapes; its content is not validated (as in the module's scanner).
  /** The first backslash in [from, to), or -1. */
  const backslash = (from: number, to: number): number => {
    const k = body.subarray(from, to).indexOf(0x5c);
    return k < 0 ? -1 : from + k;
  };
  const skipStr = (): void => {
    i++;
    for (;;) {
      let q = body.indexOf(0x22, i);
      if (q < 0 || q >= end) {
        i = end;
        peek(); // throws: truncated, or beyond the limit
      }
      const bs = backslash(i, q);
      if (bs >= 0) {
        i = bs + 2;
        if (i > end) {
          i = end;
          peek();
        }
        continue;
      }
      i = q + 1;
      return;
    }
  };
  // A string starting at the opening quote, decoded (keys, the model).
  const str = (): string => {
    i++;
    // Fast path: no escape before the closing quote (keys and model names almost never have one).
    const q = body.indexOf(0x22, i);
    if (q >= 0 && q < end && q - i <= MAX_MODEL_LEN * 2) {
      if (backslash(i, q) < 0) {
        for (let k = i; k < q; k++) if ((body[k] as number) < 0x20) fail();
        const text = body.toString('utf8', i, q);
        i = q + 1;
        return text;
      }
    }
    const parts: number[] = [];
    let out = '';
    let decode = true;
    const flush = (): void => {
      if (parts.length) out += Buffer.from(parts).toString('utf8');
      parts.length = 0;
    };
    for (;;) {
      const b = peek();
      i++;
      if (b === 0x22) break;
      if (b < 0x20) fail();
      if (b !== 0x5c) {
        if (decode) parts.push(b);
        continue;
      }
      const e = peek();
      i++;
      const simple: Record<number, string> = { 0x22: '"', 0x5c: '\\', 0x2f: '/', 0x62: '\b', 0x66: '\f', 0x6e: '\n', 0x72: '\r', 0x74: '\t' };
      if (e === 0x75) {
        let v = 0;
        for (let k = 0; k < 4; k++) {
          const d = parseInt(String.fromCharCode(peek()), 16);
          if (Number.isNaN(d)) fail();
          v = v * 16 + d;
          i++;
        }
        if (decode) {
          flush();
          out += String.fromCharCode(v);
        }
      } else if (simple[e] !== undefined) {
        if (decode) {
          flush();
          out += simple[e];
        }
      } else fail();
      if (decode && out.length + parts.length > MAX_MODEL_LEN * 2) {
        // Long strings are never "model" (keys) or usable (the model): stop decoding.
        flush();
        decode = false;
        out += '\u0000';
      }
    }
    flush();
    // Lone surrogates become U+FFFD, as in the module.
    return (out as unknown as { toWellFormed(): string }).toWellFormed();
  };
  const skipValue = (): void => {
    const b = peek();
    if (b === 0x22) return skipStr();
    if (b === 0x7b || b === 0x5b) {
      let depth = 0;
      for (;;) {
        const c = peek();
        if (c === 0x22) {
          skipStr();
          continue;
        }
        i++;
        if (c === 0x7b || c === 0x5b) depth++;
        else if (c === 0x7d || c === 0x5d) {
          if (--depth === 0) return;
        }
      }
    }
    if (b === 0x2d || (b >= 0x30 && b <= 0x39) || b === 0x74 || b === 0x66 || b === 0x6e) {
      while (i < end) {
        const c = body[i] as number;
        if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x2b || c === 0x2e) i++;
        else return;
      }
      peek();
      return;
    }
    fail();
  };
  try {
    while (i < 3 && i < end && (body[i] === 0xef || body[i] === 0xbb || body[i] === 0xbf)) i++;
    skipWs();
    if (peek() !== 0x7b) fail();
    i++;
    skipWs();
    if (peek() === 0x7d) return { status: 'no_model' };
    for (;;) {
      skipWs();
      if (peek() !== 0x22) fail();
      const key = str();
      skipWs();
      if (peek() !== 0x3a) fail();
      i++;
      skipWs();
      if (key === 'model') {
        if (peek() !== 0x22) return { status: 'not_string' };
        const m = str();
        const bytes = Buffer.byteLength(m);
        if (bytes === 0) return { status: 'bad_model', why: 'empty' };
        if (bytes > MAX_MODEL_LEN) return { status: 'bad_model', why: 'longer than 1024 bytes' };
        // eslint-disable-next-line no-control-regex
        if (/[\u0000-\u001f\u007f]/.test(m)) return { status: 'bad_model', why: 'control characters' };
        return { status: 'ok', model: m };
      }
      skipValue();
      skipWs();
      const c = peek();
      i++;
      if (c === 0x7d) return { status: 'no_model' };
      if (c !== 0x2c) {
        i--;
        fail();
      }
    }
  } catch (e) {
    if (e instanceof Stop) return e.outcome;
    throw e;
  }
}

/** Why no header was set, for the one log line. */
export function describeOutcome(o: ScanOutcome, limit: number): string {
  switch (o.status) {
    case 'ok':
      return `model ${JSON.stringify(o.model)}`;
    case 'no_body':
      return 'no body';
    case 'no_model':
      return 'the JSON body has no top-level "model"';
    case 'not_json':
      return `the body is not a JSON object (byte ${o.at})`;
    case 'not_string':
      return '"model" is not a string';
    case 'bad_model':
      return `"model" cannot be a header value (${o.why})`;
    case 'too_large':
      return `no "model" within the first ${limit} bytes (bbr.maxBodyBytes)`;
  }
}
