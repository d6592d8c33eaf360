// Prometheus text metrics of the mock EPP: streams, phases received, answers by kind, how
// streams ended, bad input by reason, and a service-time histogram (message in -> answer out).

const BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

class LabeledCounter {
  readonly values = new Map<string, number>();
  inc(label: string, by = 1): void {
    this.values.set(label, (this.values.get(label) ?? 0) + by);
  }
  get(label: string): number {
    return this.values.get(label) ?? 0;
  }
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export class MockEppMetrics {
  streamsTotal = 0;
  streamsActive = 0;
  readonly phases = new LabeledCounter();
  readonly answers = new LabeledCounter();
  readonly streamEnds = new LabeledCounter();
  readonly badInput = new LabeledCounter();
  readonly picks = new LabeledCounter();
  readonly #bucketCounts = new Array<number>(BUCKETS_SECONDS.length).fill(0);
  #serviceCount = 0;
  #serviceSum = 0;

  observeServiceTime(ms: number): void {
    const s = ms / 1000;
    this.#serviceCount++;
    this.#serviceSum += s;
    for (let i = 0; i < BUCKETS_SECONDS.length; i++) {
      if (s <= (BUCKETS_SECONDS[i] as number)) {
        this.#bucketCounts[i] = (this.#bucketCounts[i] as number) + 1;
        break;
      }
    }
  }

  render(extra: { poolSize: number; journalEntries: number; queueDepths?: Record<string, number> }): string {
    const out: string[] = [];
    const counter = (name: string, help: string, label: string, c: LabeledCounter) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
      for (const [k, v] of c.values) out.push(`${name}{${label}="${escapeLabel(k)}"} ${v}`);
    };
    out.push('# HELP eppkit_mock_streams_total ext_proc streams opened.', '# TYPE eppkit_mock_streams_total counter');
    out.push(`eppkit_mock_streams_total ${this.streamsTotal}`);
    out.push('# HELP eppkit_mock_streams_active ext_proc streams open now.', '# TYPE eppkit_mock_streams_active gauge');
    out.push(`eppkit_mock_streams_active ${this.streamsActive}`);
    counter('eppkit_mock_phases_total', 'Messages received, by phase.', 'phase', this.phases);
    counter('eppkit_mock_answers_total', 'Messages answered, by kind of answer.', 'kind', this.answers);
    counter('eppkit_mock_stream_ends_total', 'Streams ended, by how they ended.', 'how', this.streamEnds);
    counter('eppkit_mock_bad_input_total', 'Bad input from clients, by reason.', 'reason', this.badInput);
    counter('eppkit_mock_picks_total', 'Endpoints picked (first of the list).', 'endpoint', this.picks);
    out.push('# HELP eppkit_mock_pool_size Endpoints in the pool.', '# TYPE eppkit_mock_pool_size gauge');
    out.push(`eppkit_mock_pool_size ${extra.poolSize}`);
    if (extra.queueDepths) {
      out.push('# HELP eppkit_mock_queue_depth Simulated queue depth per endpoint (least-loaded picker).');
      out.push('# TYPE eppkit_mock_queue_depth gauge');
      for (const [k, v] of Object.entries(extra.queueDepths)) out.push(`eppkit_mock_queue_depth{endpoint="${escapeLabel(k)}"} ${v}`);
    }
    const mem = process.memoryUsage();
    out.push('# HELP eppkit_mock_process_resident_memory_bytes Resident set size of the mock process.', '# TYPE eppkit_mock_process_resident_memory_bytes gauge');
    out.push(`eppkit_mock_process_resident_memory_bytes ${mem.rss}`);
    out.push('# HELP eppkit_mock_heap_used_bytes V8 heap in use.', '# TYPE eppkit_mock_heap_used_bytes gauge');
    out.push(`eppkit_mock_heap_used_bytes ${mem.heapUsed}`);
    out.push('# HELP eppkit_mock_journal_entries Entries held in the journal.', '# TYPE eppkit_mock_journal_entries gauge');
    out.push(`eppkit_mock_journal_entries ${extra.journalEntries}`);
    const h = 'eppkit_mock_service_time_seconds';
    out.push(`# HELP ${h} Time from a message received to its answer sent.`, `# TYPE ${h} histogram`);
    let cum = 0;
    for (let i = 0; i < BUCKETS_SECONDS.length; i++) {
      cum += this.#bucketCounts[i] as number;
      out.push(`${h}_bucket{le="${BUCKETS_SECONDS[i]}"} ${cum}`);
    }
    out.push(`${h}_bucket{le="+Inf"} ${this.#serviceCount}`, `${h}_sum ${this.#serviceSum}`, `${h}_count ${this.#serviceCount}`);
    return `${out.join('\n')}\n`;
  }
}
