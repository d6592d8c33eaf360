import { describe, expect, it } from 'vitest';
import { mergeSnapshots, ProxyMetrics, renderPrometheus } from './proxy-metrics.ts';

describe('ProxyMetrics', () => {
  it('renders counters by outcome and cumulative histogram buckets', () => {
    const m = new ProxyMetrics();
    m.request('routed', 'ok', 200);
    m.request('routed', 'ok', 200);
    m.request('epp_failure', 'epp_timeout', 504);
    m.eppLatency(0.3);
    m.eppLatency(30);
    const t = renderPrometheus(m.snapshot());
    expect(t).toContain('eppkit_node_proxy_requests_total{outcome="routed",reason="ok",status="200"} 2');
    expect(t).toContain('eppkit_node_proxy_requests_total{outcome="epp_failure",reason="epp_timeout",status="504"} 1');
    expect(t).toContain('eppkit_node_proxy_epp_latency_seconds_bucket{le="0.0005"} 1');
    expect(t).toContain('eppkit_node_proxy_epp_latency_seconds_bucket{le="0.025"} 1');
    expect(t).toContain('eppkit_node_proxy_epp_latency_seconds_bucket{le="0.05"} 2');
    expect(t).toContain('eppkit_node_proxy_epp_latency_seconds_bucket{le="+Inf"} 2');
    expect(t).toContain('eppkit_node_proxy_epp_latency_seconds_count 2');
  });

  it('merges worker snapshots by summing', () => {
    const a = new ProxyMetrics();
    const b = new ProxyMetrics();
    a.request('routed', 'ok', 200);
    b.request('routed', 'ok', 200);
    b.upstreamLatency(1);
    a.eppStreamOpened();
    const s = mergeSnapshots([a.snapshot(), b.snapshot()]);
    expect(s.requests['routed|ok|200']).toBe(2);
    expect(s.upstreamLatency.count).toBe(1);
    expect(s.active.eppStreams).toBe(1);
  });
});
