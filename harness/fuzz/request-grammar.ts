// Client traffic for a fuzz case, as fast-check arbitraries: methods, bodies of every size
// (none, one byte, around the usual buffer sizes, a few MiB), Content-Length or chunked in
// pieces, odd but sendable client headers, a client that names its own destination endpoint,
// deliberate aborts at random points, and keep-alive sequences of several requests on one
// connection, a few connections at once. Each request comes with its answer script.
import fc from 'fast-check';
import { compact, fuzzScript } from './answer-grammar.ts';
import type { FuzzCase, FuzzExchange, FuzzRequest } from './fuzz-case.ts';

export interface CaseLimits {
  /** The data plane's per-message EPP timeout, ms (delays are drawn around it). */
  timeoutMs: number;
  /** Pool size (picks index into it). */
  poolSize: number;
  /** Largest request body generated; the plane's limit is a little under the top sizes. */
  maxBodyBytes: number;
  maxConnections: number;
  maxRequestsPerConnection: number;
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'] as const;
const PATHS = ['/', '/v1/completions', '/v1/chat/completions', '/v1/models', '/a/%2F..%2F?x=1&x=2', `/${'p'.repeat(2000)}`];

const clientHeader: fc.Arbitrary<[string, string]> = fc.oneof(
  { arbitrary: fc.constantFrom<[string, string]>(['content-type', 'application/json'], ['x-model', 'fuzz-model'], ['accept', '*/*'], ['user-agent', 'eppkit-fuzz']), weight: 4 },
  {
    arbitrary: fc.constantFrom<[string, string]>(
      ['x-latin1', '\u00e9\u00ff'],
      ['x-empty', ''],
      ['x-eppkit-delay-ms', '5'],
      ['expect', '100-continue'],
      ['x-big', 'b'.repeat(6000)],
      ['x-gateway-destination-endpoint-served', '127.0.0.1:1'],
    ),
    weight: 1,
  },
);

export function fuzzRequest(l: CaseLimits): fc.Arbitrary<FuzzRequest> {
  const sizes = [0, 0, 1, 100, 8191, 16_384, 65_537, 1_048_576, 3 * 1_048_576].filter((n) => n <= l.maxBodyBytes);
  return fc
    .record({
      method: fc.oneof({ arbitrary: fc.constantFrom('GET', 'POST'), weight: 4 }, { arbitrary: fc.constantFrom(...METHODS), weight: 1 }),
      path: fc.oneof({ arbitrary: fc.constant('/v1/completions'), weight: 4 }, { arbitrary: fc.constantFrom(...PATHS), weight: 1 }),
      headers: fc.array(clientHeader, { maxLength: 3 }),
      bodySize: fc.constantFrom(...sizes),
      chunked: fc.option(fc.record({ chunkSize: fc.constantFrom<number>(1, 7, 1024, 65_536), delayMs: fc.constantFrom<number>(0, 0, 5) }), { nil: undefined, freq: 3 }),
      hijack: fc.oneof({ arbitrary: fc.constant(false), weight: 8 }, { arbitrary: fc.constant(true), weight: 1 }),
      abortAfterMs: fc.option(fc.constantFrom(0, 5, Math.round(l.timeoutMs / 2), l.timeoutMs, l.timeoutMs * 2), { nil: undefined, freq: 10 }),
    })
    .map((r) => {
      // At most 64 pieces: a 3 MiB body in 1-byte chunks would only measure the client.
      if (r.chunked && r.bodySize > 0) r.chunked.chunkSize = Math.max(r.chunked.chunkSize, Math.ceil(r.bodySize / 64));
      if (r.bodySize === 0) r.chunked = undefined;
      return compact(r);
    });
}

export function fuzzExchange(l: CaseLimits): fc.Arbitrary<FuzzExchange> {
  return fc.record({ request: fuzzRequest(l), script: fuzzScript(l.timeoutMs), pick: fc.nat({ max: Math.max(0, l.poolSize - 1) }) });
}

export function fuzzCase(l: CaseLimits): fc.Arbitrary<FuzzCase> {
  return fc.record({
    connections: fc.array(fc.array(fuzzExchange(l), { minLength: 1, maxLength: l.maxRequestsPerConnection }), { minLength: 1, maxLength: l.maxConnections }),
  });
}
