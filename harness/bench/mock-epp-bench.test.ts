import { describe, expect, it } from 'vitest';
import { extProcLoadOptionsSchema } from '../../mock-epp/load/ext-proc-load.ts';
import { parseBenchOptions } from './bench-options.ts';
import { extProcLoadOptions } from './mock-epp-bench.ts';

describe('eppkit bench mock-epp options', () => {
  it('maps bench options onto a valid ext_proc load client configuration', () => {
    const o = parseBenchOptions({ mode: 'mock-epp', rate: '2000', streams: '48', connections: '6', workers: '2', bodyMode: 'streamed', duration: '3s' });
    const l = extProcLoadOptions(o);
    expect(l).toMatchObject({ spawnMock: true, workers: 2, connections: 3, concurrency: 48, rate: 2000, duration: 3000, bodyBytes: 1024, bodyMode: 'FULL_DUPLEX_STREAMED' });
    expect(extProcLoadOptionsSchema.safeParse(l).success).toBe(true);
  });

  it('defaults to a closed loop, 4 connections in all, a 1 KiB body announced as BUFFERED', () => {
    const l = extProcLoadOptions(parseBenchOptions({ mode: 'mock-epp', workers: '2' }));
    expect(l).toMatchObject({ workers: 2, connections: 2, concurrency: 32, bodyBytes: 1024, bodyMode: 'BUFFERED' });
    expect(l.rate).toBeUndefined();
    expect(extProcLoadOptionsSchema.safeParse(l).success).toBe(true);
  });
});
