import { describe, expect, it } from 'vitest';
import { headroomNotes, parseWrk } from './generator-headroom.ts';

const WRK = `Running 2s test @ http://127.0.0.2:3000/bench
  1 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   180.00us   50.00us   2.00ms   90.00%
  30000 requests in 2.00s, 4.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:  15000.50
Transfer/sec:      2.00MB
`;

describe('generator headroom', () => {
  it('reads the rate, non-2xx and socket errors from wrk', () => {
    expect(parseWrk(WRK)).toEqual({ rps: 15000.5, non2xx: 5, errors: 3 });
    expect(parseWrk('unable to connect')).toBeUndefined();
  });

  it('flags the planes that came near the client ceiling, closed loop only', () => {
    const h = { wrkRps: 30000, clientRps: 10000, clientShare: 0.33, threads: 2, connections: 32, durationMs: 3000 };
    const notes = headroomNotes(h, [{ target: 'nginx', rps: 9000 }, { target: 'node-proxy', rps: 2000 }], true);
    expect(notes[0]).toContain('30,000 req/s');
    expect(notes.some((n) => n.startsWith('nginx: 90 %'))).toBe(true);
    expect(notes.some((n) => n.startsWith('node-proxy'))).toBe(false);
    expect(headroomNotes(h, [{ target: 'nginx', rps: 9000 }], false)).toHaveLength(1);
    // wrk slower than the client: no headroom the client lacks; planes near the client's own
    // rate are still flagged against it.
    const odd = headroomNotes({ ...h, wrkRps: 5000, clientShare: 2 }, [{ target: 'nginx', rps: 9000 }, { target: 'node-proxy', rps: 2000 }], true);
    expect(odd[1]).toContain('100 % faster than wrk');
    expect(odd.some((n) => n.startsWith('nginx: 90 %'))).toBe(true);
    expect(odd).toHaveLength(3);
  });
});
