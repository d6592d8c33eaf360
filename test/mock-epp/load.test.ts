// The ext_proc load client against a real mock EPP: every stream served, the histogram holds
// every measured stream, the mock saw headers + a 1 KiB body per stream, and bad options are
// one EppkitError listing every problem.
import { describe, expect, it } from 'vitest';
import { MockEpp } from '../../mock-epp/mock-epp.ts';
import { formatExtProcLoadResult, runExtProcLoad } from '../../mock-epp/load/ext-proc-load.ts';

describe('ext_proc load client', () => {
  it('runs a fixed number of streams over worker threads and reports service time', async () => {
    await using epp = await new MockEpp({ endpoints: ['127.0.0.2:8000', '127.0.0.3:8000'] }).withAdminPort(null).start();
    const r = await runExtProcLoad({ target: epp.address, workers: 2, connections: 2, concurrency: 8, streams: 300, duration: '30s', warmup: 0 });
    expect(r.errors).toBe(0);
    expect(r.streamsTotal).toBe(300);
    expect(r.streams).toBe(300);
    expect(r.serviceTime.count).toBe(300);
    expect(r.serviceTime.p99).toBeGreaterThan(0);
    expect(epp.metrics.streamsTotal).toBe(300);
    const e = epp.journal.at(-1);
    expect(e?.requestBody?.size).toBe(1024);
    expect(e?.answers.map((a) => a.kind)).toEqual(['request_headers', 'request_body']);
    expect(formatExtProcLoadResult(r)).toMatch(/300 streams measured/);
  });

  it('FULL_DUPLEX_STREAMED body mode and a fixed rate', async () => {
    await using epp = await new MockEpp({ endpoints: ['127.0.0.2:8000'] }).withAdminPort(null).start();
    const r = await runExtProcLoad({ target: epp.address, workers: 1, connections: 1, rate: 200, duration: '500ms', warmup: 0, bodyMode: 'FULL_DUPLEX_STREAMED' });
    expect(r.errors).toBe(0);
    expect(r.streams).toBeGreaterThan(0);
    expect(epp.journal.at(-1)?.bodyMode.request).toBe('FULL_DUPLEX_STREAMED');
  });

  it('counts failed streams as errors by kind', async () => {
    await using epp = await new MockEpp({ endpoints: ['127.0.0.2:8000'], rules: [{ action: { grpcError: { code: 'UNAVAILABLE' } } }] }).withAdminPort(null).start();
    const r = await runExtProcLoad({ target: epp.address, workers: 1, connections: 1, concurrency: 4, streams: 20, warmup: 0 });
    expect(r.errorsByKind).toEqual({ 'grpc-status 14': 20 });
  });

  it('rejects bad options with every problem', async () => {
    const e = (await runExtProcLoad({ target: 'h:1', workers: 0, bodyMode: 'x' } as never).catch((x: unknown) => x)) as { code: string; problems: Array<{ path: string }> };
    expect(e.code).toBe('EPPKIT_CONFIG_INVALID');
    expect(e.problems.map((p) => p.path)).toEqual(expect.arrayContaining(['workers', 'bodyMode']));
    await expect(runExtProcLoad({})).rejects.toMatchObject({ problems: [{ path: 'target' }] });
  });
});
