// The unit of a fuzz run: a few client connections (run at once), each a keep-alive sequence
// of requests, each request with the script the mock EPP answers its stream with and the pool
// endpoint the EPP picks. Plain JSON: what fast-check generates and shrinks is what
// case.json stores and `eppkit fuzz --replay` runs.
import type { FuzzScript } from '../../mock-epp/fuzz-script.ts';

export interface FuzzRequest {
  method: string;
  path: string;
  /** Extra client headers (name, value as latin1 text). */
  headers: Array<[string, string]>;
  /** Body size in bytes (0 = none); `chunked` sends it with Transfer-Encoding: chunked in pieces. */
  bodySize: number;
  chunked?: { chunkSize: number; delayMs: number };
  /** The client sends its own x-gateway-destination-endpoint naming a backend outside the pool (facts §6 bypass). */
  hijack: boolean;
  /** The client gives up after this many ms (a deliberate abort). */
  abortAfterMs?: number;
}

export interface FuzzExchange {
  request: FuzzRequest;
  script: FuzzScript;
  /** Index into the pool of the endpoint the EPP picks for this request. */
  pick: number;
}

export interface FuzzCase {
  /** Each connection is one keep-alive sequence; connections run concurrently. */
  connections: FuzzExchange[][];
}

/** The route a fuzz run drives the data plane with (one plane start per profile). */
export interface FuzzProfile {
  name: string;
  failureMode: 'open' | 'close';
  bodyMode: 'none' | 'buffered' | 'streamed';
}

export function exchangesOf(c: FuzzCase): FuzzExchange[] {
  return c.connections.flat();
}

/**
 * A shape of a request's answer sequence, for coverage counts: the emits' kinds and phases in
 * order, turns separated by '|', and how the rest is answered.
 */
export function scriptShape(s: FuzzScript): string {
  const turns = s.turns.map((t) =>
    t
      .map((e) => {
        switch (e.do) {
          case 'answer':
            return `answer:${e.phase}`;
          case 'raw':
            return `raw:${e.kind}`;
          case 'end':
            return e.code === 0 ? 'close' : 'grpc-error';
          case 'delay':
            return 'delay';
          default:
            return e.do;
        }
      })
      .join(','),
  );
  return `${turns.join('|')}>${s.rest}`;
}
