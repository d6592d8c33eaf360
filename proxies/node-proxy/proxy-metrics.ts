// node-proxy's Prometheus metrics: requests by outcome and reason, EPP and upstream latency
// histograms, and gauges of what is open right now (tests use the gauges to prove nothing
// leaks). Kept as plain data so cluster workers can send snapshots to the primary, which
// sums them and renders one /metrics page.

const BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface HistogramData {
  counts: number[]; // per bucket, not cumulative; last = +Inf
  sum: number;
  count: number;
}

export interface MetricsSnapshot {
  /** `${outcome}|${reason}|${status}` -> count */
  requests: Record<string, number>;
  eppLatency: HistogramData;
  upstreamLatency: HistogramData;
  /** In flight now. */
  active: { requests: number; eppStreams: number; upstreamRequests: number };
  /** Cumulative EPP streams opened and closed (opened - closed = open now). */
  eppStreamsOpened: number;
  eppStreamsClosed: number;
}

function emptyHistogram(): HistogramData {
  return { counts: new Array<number>(BUCKETS_S.length + 1).fill(0), sum: 0, count: 0 };
}

export function emptySnapshot(): MetricsSnapshot {
  return {
    requests: {},
    eppLatency: emptyHistogram(),
    upstreamLatency: emptyHistogram(),
    active: { requests: 0, eppStreams: 0, upstreamRequests: 0 },
    eppStreamsOpened: 0,
    eppStreamsClosed: 0,
  };
}

function observe(h: HistogramData, seconds: number): void {
  let i = 0;
  while (i < BUCKETS_S.length && seconds > (BUCKETS_S[i] as number)) i++;
  h.counts[i] = (h.counts[i] ?? 0) + 1;
  h.sum += seconds;
  h.count++;
}

export class ProxyMetrics {
  readonly data: MetricsSnapshot = emptySnapshot();

  request(outcome: string, reason: string, status: number): void {
    const k = `${outcome}|${reason}|${status}`;
    this.data.requests[k] = (this.data.requests[k] ?? 0) + 1;
  }
  eppLatency(ms: number): void {
    observe(this.data.eppLatency, ms / 1000);
  }
  upstreamLatency(ms: number): void {
    observe(this.data.upstreamLatency, ms / 1000);
  }
  eppStreamOpened(): void {
    this.data.eppStreamsOpened++;
    this.data.active.eppStreams++;
  }
  eppStreamClosed(): void {
    this.data.eppStreamsClosed++;
    this.data.active.eppStreams--;
  }
  snapshot(): MetricsSnapshot {
    return structuredClone(this.data);
  }
}

export function mergeSnapshots(list: readonly MetricsSnapshot[]): MetricsSnapshot {
  const out = emptySnapshot();
  for (const s of list) {
    for (const [k, v] of Object.entries(s.requests)) out.requests[k] = (out.requests[k] ?? 0) + v;
    for (const key of ['eppLatency', 'upstreamLatency'] as const) {
      s[key].counts.forEach((c, i) => (out[key].counts[i] = (out[key].counts[i] ?? 0) + c));
      out[key].sum += s[key].sum;
      out[key].count += s[key].count;
    }
    out.active.requests += s.active.requests;
    out.active.eppStreams += s.active.eppStreams;
    out.active.upstreamRequests += s.active.upstreamRequests;
    out.eppStreamsOpened += s.eppStreamsOpened;
    out.eppStreamsClosed += s.eppStreamsClosed;
  }
  return out;
}

function histogramText(name: string, help: string, h: HistogramData): string[] {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
  let cum = 0;
  BUCKETS_S.forEach((b, i) => {
    cum += h.counts[i] ?? 0;
    lines.push(`${name}_bucket{le="${b}"} ${cum}`);
  });
  cum += h.counts[BUCKETS_S.length] ?? 0;
  lines.push(`${name}_bucket{le="+Inf"} ${cum}`, `${name}_sum ${h.sum}`, `${name}_count ${h.count}`);
  return lines;
}

/** Prometheus text exposition format 0.0.4. */
export function renderPrometheus(s: MetricsSnapshot): string {
  const lines = [
    '# HELP eppkit_node_proxy_requests_total Requests finished, by outcome, reason code and status.',
    '# TYPE eppkit_node_proxy_requests_total counter',
  ];
  for (const [k, v] of Object.entries(s.requests).sort()) {
    const [outcome, reason, status] = k.split('|');
    lines.push(`eppkit_node_proxy_requests_total{outcome="${outcome}",reason="${reason}",status="${status}"} ${v}`);
  }
  lines.push(
    ...histogramText('eppkit_node_proxy_epp_latency_seconds', 'Time from the first message to the EPP until its decision.', s.eppLatency),
    ...histogramText(
      'eppkit_node_proxy_upstream_latency_seconds',
      'Time from sending the request upstream until the response headers.',
      s.upstreamLatency,
    ),
    '# HELP eppkit_node_proxy_active_requests Client requests in flight.',
    '# TYPE eppkit_node_proxy_active_requests gauge',
    `eppkit_node_proxy_active_requests ${s.active.requests}`,
    '# HELP eppkit_node_proxy_active_epp_streams ext_proc streams open.',
    '# TYPE eppkit_node_proxy_active_epp_streams gauge',
    `eppkit_node_proxy_active_epp_streams ${s.active.eppStreams}`,
    '# HELP eppkit_node_proxy_active_upstream_requests Upstream requests in flight.',
    '# TYPE eppkit_node_proxy_active_upstream_requests gauge',
    `eppkit_node_proxy_active_upstream_requests ${s.active.upstreamRequests}`,
    '# HELP eppkit_node_proxy_epp_streams_opened_total ext_proc streams opened.',
    '# TYPE eppkit_node_proxy_epp_streams_opened_total counter',
    `eppkit_node_proxy_epp_streams_opened_total ${s.eppStreamsOpened}`,
    '# HELP eppkit_node_proxy_epp_streams_closed_total ext_proc streams closed (any way).',
    '# TYPE eppkit_node_proxy_epp_streams_closed_total counter',
    `eppkit_node_proxy_epp_streams_closed_total ${s.eppStreamsClosed}`,
  );
  return `${lines.join('\n')}\n`;
}
