import { describe, expect, it } from 'vitest';
import { sendableHeaders } from './upstream-client.ts';

describe('sendableHeaders', () => {
  it('leaves out framing and connection headers in any case, keeps the rest in order', () => {
    const out = sendableHeaders([
      ['Host', 'a'],
      ['Transfer-Encoding', 'chunked'],
      ['X-One', '1'],
      ['connection', 'close'],
      ['Keep-Alive', 'timeout=5'],
      ['Upgrade', 'h2c'],
      ['TE', 'trailers'],
      ['Trailer', 'x'],
      ['Proxy-Connection', 'keep-alive'],
      ['Expect', '100-continue'],
      ['Content-Length', '4'],
      ['x-one', '2'],
    ]);
    expect(out).toEqual(['Host', 'a', 'X-One', '1', 'Content-Length', '4', 'x-one', '2']);
  });

  it('keeps the first Host only', () => {
    expect(sendableHeaders([['host', 'first'], ['x', 'y'], ['HOST', 'second']])).toEqual(['host', 'first', 'x', 'y']);
  });
});
