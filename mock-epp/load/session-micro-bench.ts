// Microbenchmark of the mock's per-stream work without a transport: what `eppkit bench
// mock-epp` sends (request headers + a 1 KiB body, BUFFERED, send_body_without_waiting),
// decoded and fed to ExtProcSession through a call that only counts answers. CPU per stream
// from process.cpuUsage(), so other processes on the machine move it less than wall time.
//   node mock-epp/load/session-micro-bench.ts [streams] [rounds] [--do-nothing] [--journal=maxEntries]
import { EventEmitter } from 'node:events';
import { silentLogger } from '../../core/logger.ts';
import { BodySendMode } from '../../core/proto.ts';
import { decodeProcessingRequest, encodeProcessingRequest, encodeProcessingResponse } from '../ext-proc-codec.ts';
import { ExtProcSession, type ConfigState } from '../ext-proc-session.ts';
import { forwardEvents, type CallHandler } from '../grpc-transport.ts';
import { Journal } from '../journal.ts';
import { parseMockEppConfig } from '../mock-epp-config.ts';
import { MockEppMetrics } from '../mock-epp-metrics.ts';
import { createPicker } from '../pickers.ts';
import { compileRules } from '../rules.ts';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const streams = Number(args[0] ?? 100_000);
const rounds = Number(args[1] ?? 5);
const raw = (k: string, v: string) => ({ key: k, raw_value: Buffer.from(v) });
const headersBytes = encodeProcessingRequest({
  request_headers: {
    headers: { headers: [raw(':method', 'POST'), raw(':path', '/v1/completions'), raw(':authority', 'bench.test'), raw(':scheme', 'http'), raw('content-type', 'application/json'), raw('content-length', '1024'), raw('user-agent', 'eppkit-ext-proc-load')] },
    end_of_stream: false,
  },
  protocol_config: { request_body_mode: BodySendMode.BUFFERED, response_body_mode: 0, send_body_without_waiting_for_header_response: true },
});
const bodyBytes = encodeProcessingRequest({ request_body: { body: Buffer.alloc(1024, 0x61), end_of_stream: true } });

const journalArg = process.argv.find((a) => a.startsWith('--journal='));
const config = parseMockEppConfig({
  endpoints: ['127.0.0.2:8000', '127.0.0.3:8000', '127.0.0.4:8000', '127.0.0.5:8000'],
  ...(journalArg ? { journal: { maxEntries: Number(journalArg.slice('--journal='.length)) } } : {}),
});
const rules = compileRules(config.rules);
const state: ConfigState = { config, rules, picker: createPicker(config.picker), needsModel: false, needsBody: false, ordinal: 0 };
const journal = new Journal(config.journal.maxEntries);
const metrics = new MockEppMetrics();
let nextId = 0;
let answers = 0;
let bytes = 0;

class FakeCall extends EventEmitter {
  readonly peer = '127.0.0.1:40000';
  ended = false;
  setHandler(h: CallHandler): void {
    forwardEvents(this, h);
  }
  write(m: unknown): void {
    // The transport's encoding is part of the per-stream cost.
    bytes += encodeProcessingResponse(m).length;
    answers++;
  }
  end(): void {
    this.ended = true;
  }
  reset(): string {
    return 'RST_STREAM';
  }
}

const env = { state, journal, metrics, logger: silentLogger, nextId: () => ++nextId, onClosed: () => {} };
// `--do-nothing`: the do-nothing server's handler (an empty answer per message) in the same harness.
const doNothing = process.argv.includes('--do-nothing');
const HEADERS = { request_headers: { response: {} } };
const BODY = { request_body: { response: {} } };

function run(n: number): void {
  for (let i = 0; i < n; i++) {
    const call = new FakeCall();
    if (doNothing) {
      call.on('message', (m: { request_headers?: unknown }) => call.write(m.request_headers ? HEADERS : BODY));
      call.on('halfClose', () => call.end());
    } else new ExtProcSession(call as never, env);
    // The transport decodes every message.
    call.emit('message', decodeProcessingRequest(headersBytes));
    call.emit('message', decodeProcessingRequest(bodyBytes));
    call.emit('halfClose');
  }
}

run(20_000);
for (let r = 0; r < rounds; r++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  run(streams);
  const c = process.cpuUsage(c0);
  const us = (c.user + c.system) / streams;
  process.stdout.write(`round ${r + 1}: ${us.toFixed(2)} µs CPU per stream (${((performance.now() - t0) * 1000 / streams).toFixed(2)} µs wall), ${answers} answers, journal ${journal.entries.length}\n`);
}
