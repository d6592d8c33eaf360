import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../core/logger.ts';
import { BodySendMode } from '../core/proto.ts';
import { toProtoStruct } from '../core/proto-struct.ts';
import { decodeProcessingRequest, encodeProcessingRequest, encodeProcessingResponse } from './ext-proc-codec.ts';
import { ExtProcSession, type ConfigState } from './ext-proc-session.ts';
import { forwardEvents, type CallHandler } from './grpc-transport.ts';
import { Journal, type JournalEntry } from './journal.ts';
import { parseMockEppConfig } from './mock-epp-config.ts';
import { MockEppMetrics } from './mock-epp-metrics.ts';
import { compileFiller, packEntry, type Shape } from './packed-entry.ts';
import { createPicker } from './pickers.ts';
import { compileRules } from './rules.ts';

const raw = (k: string, v: string) => ({ key: k, raw_value: Buffer.from(v) });
const REQUEST = [raw(':method', 'POST'), raw(':path', '/v1/completions'), raw(':authority', 'bench.test'), raw(':scheme', 'http'), raw('content-type', 'application/json')];

/** Streams of different kinds, each as the messages a data plane sends (encoded, then decoded as the transport does). */
const STREAMS: Record<string, unknown[]> = {
  'headers + buffered body (the bench)': [
    { request_headers: { headers: { headers: [...REQUEST, raw('content-length', '16')] }, end_of_stream: false }, protocol_config: { request_body_mode: BodySendMode.BUFFERED, response_body_mode: 0, send_body_without_waiting_for_header_response: true } },
    { request_body: { body: Buffer.from('{"model":"m1"}  '), end_of_stream: true } },
  ],
  'headers only': [{ request_headers: { headers: { headers: [raw(':method', 'GET'), raw(':path', '/x'), raw('x-odd', 'a,b')] }, end_of_stream: true } }],
  'response phases with served-endpoint metadata': [
    { request_headers: { headers: { headers: REQUEST }, end_of_stream: true } },
    {
      response_headers: { headers: { headers: [raw(':status', '200')] }, end_of_stream: false },
      metadata_context: { filter_metadata: { 'envoy.lb': toProtoStruct({ 'x-gateway-destination-endpoint-served': '127.0.0.2:8000' }) } },
    },
    { response_body: { body: Buffer.from('done'), end_of_stream: true } },
  ],
  'immediate response by directive': [{ request_headers: { headers: { headers: [...REQUEST, raw('x-eppkit-immediate', '503')] }, end_of_stream: true } }],
  'body before headers (a problem)': [{ request_body: { body: Buffer.from('x'), end_of_stream: true } }],
};

class FakeCall extends EventEmitter {
  readonly peer = '127.0.0.1:40000';
  ended = false;
  setHandler(h: CallHandler): void {
    forwardEvents(this, h);
  }
  write(m: unknown): void {
    encodeProcessingResponse(m);
  }
  end(): void {
    this.ended = true;
  }
  reset(): string {
    return 'RST_STREAM';
  }
}

function harness(maxEntries: number) {
  const config = parseMockEppConfig({ endpoints: ['127.0.0.2:8000', '127.0.0.3:8000'], journal: { maxEntries } });
  const state: ConfigState = { config, rules: compileRules(config.rules), picker: createPicker(config.picker), needsModel: false, needsBody: false, ordinal: 0 };
  const journal = new Journal(config.journal.maxEntries);
  let nextId = 0;
  const env = { state, journal, metrics: new MockEppMetrics(), logger: silentLogger, nextId: () => ++nextId, onClosed: () => {} };
  /** Runs one stream; returns its entry's JSON as it was when the stream ended. */
  const stream = (messages: unknown[]): { id: number; json: string } => {
    const call = new FakeCall();
    new ExtProcSession(call as never, env);
    for (const m of messages) call.emit('message', decodeProcessingRequest(encodeProcessingRequest(m)));
    call.emit('halfClose');
    const e = journal.entries.at(-1) as JournalEntry;
    expect(e.end).toBeDefined();
    return { id: e.id, json: JSON.stringify(e) };
  };
  /** Opens a stream with one message and leaves it open. */
  const open = (message: unknown): { id: number } => {
    const call = new FakeCall();
    const s = new ExtProcSession(call as never, env);
    call.emit('message', decodeProcessingRequest(encodeProcessingRequest(message)));
    return { id: s.entry.id };
  };
  return { journal, stream, open };
}

describe('packed journal entries', () => {
  it('read back byte for byte as they were when their stream ended, for every kind of stream', () => {
    const { journal, stream } = harness(10_000);
    const before = Object.entries(STREAMS).map(([kind, messages]) => ({ kind, ...stream(messages) }));
    // Packed as their streams end.
    expect(journal.packed).toBe(before.length);
    const byId = new Map(journal.entries.map((e) => [e.id, e]));
    for (const b of before) expect({ kind: b.kind, json: JSON.stringify(byId.get(b.id)) }).toEqual({ kind: b.kind, json: b.json });
    // The whole journal as the admin API sends it.
    expect(JSON.stringify(journal.entries)).toBe(`[${journal.entries.map((e) => JSON.stringify(e)).join(',')}]`);
  });

  it('reuses its ring slots: every kind of stream, big entries and open ones among them, reads back the same after the ring wrapped', () => {
    const { journal, stream, open } = harness(7);
    // More headers than a ring slot holds: packed on its own.
    const many = Array.from({ length: 80 }, (_, i) => raw(`x-h${i}`, `v${i}`));
    const kinds: Array<[string, unknown[]]> = [...Object.entries(STREAMS), ['80 headers', [{ request_headers: { headers: { headers: many }, end_of_stream: true } }]]];
    const seen = new Map<number, { kind: string; json: string }>();
    let live: ReturnType<typeof open> | undefined;
    for (let round = 0; round < 9; round++) {
      for (const [kind, messages] of kinds) {
        const s = stream(messages);
        seen.set(s.id, { kind, json: s.json });
      }
      // One stream still open now and then, in a slot of its own between packed ones.
      if (round % 3 === 0) live = open(STREAMS['headers + buffered body (the bench)']![0]!);
      const held = journal.entries;
      expect(held.length).toBe(7);
      expect(held.map((e) => e.id)).toEqual([...held.map((e) => e.id)].sort((a, b) => a - b));
      for (const e of held) {
        if (e.id === live?.id) {
          expect(e.end).toBeUndefined();
          continue;
        }
        const want = seen.get(e.id)!;
        expect({ kind: want.kind, json: JSON.stringify(e) }).toEqual(want);
      }
      expect(journal.packed).toBe(held.filter((e) => e.end !== undefined).length);
    }
  });

  it('keeps the newest entries, byte for byte, when maxEntries shrinks or grows', () => {
    const { journal, stream } = harness(10);
    const kinds = Object.values(STREAMS);
    const all = Array.from({ length: 10 }, (_, i) => stream(kinds[i % kinds.length]!));
    journal.maxEntries = 4;
    expect(journal.entries.map((e) => JSON.stringify(e))).toEqual(all.slice(6).map((s) => s.json));
    journal.maxEntries = 6;
    const more = [stream(kinds[0]!), stream(kinds[1]!)];
    expect(journal.entries.map((e) => JSON.stringify(e))).toEqual([...all.slice(6), ...more].map((s) => s.json));
    stream(kinds[2]!);
    expect(journal.size).toBe(6);
  });

  it('keeps key order, undefined values, shared frozen values and nested arrays as they were', () => {
    const shared = Object.freeze({ request: 'BUFFERED', response: 'NONE' });
    const e = {
      id: 7,
      startedAt: 't',
      peer: 'p',
      bodyMode: shared,
      phases: [{ phase: 'request_headers', atMs: 0.5, headers: { b: '1', a: '2', '10': 'n' } }],
      metadataContext: { ns: { list: [1, 'x', null, { deep: true }] } },
      answers: [],
      problems: ['one'],
      model: undefined,
      end: { how: 'completed' },
    } as unknown as JournalEntry;
    const v = packEntry(e)!.view();
    expect(JSON.stringify(v)).toBe(JSON.stringify(e));
    expect(Object.keys(v)).toEqual(Object.keys(e));
    expect('model' in v).toBe(true);
    expect(v.bodyMode).toBe(shared);
    expect(v).toEqual(e);
    // A new object each read: a reader cannot change what the journal holds.
    expect(packEntry(e)!.view()).not.toBe(v);
  });

  it('gives back every number as it was: small integers as small integers, doubles, -0, NaN, big integers', () => {
    const { journal } = harness(10);
    const values = [0, 7, -3, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 40, 0.1 + 0.2, -0, Number.NaN, Number.MAX_VALUE, 1e-300];
    const e = { id: 1, startedAt: 't', peer: 'p', bodyMode: { request: '', response: '' }, phases: [], metadataContext: { n: { values } }, answers: [], problems: [], end: { how: 'completed' } } as unknown as JournalEntry;
    journal.open(e);
    journal.ended(e);
    expect(journal.packed).toBe(1);
    const got = (journal.entries[0]!.metadataContext.n as { values: number[] }).values;
    expect(got.length).toBe(values.length);
    values.forEach((v, i) => expect({ i, same: Object.is(got[i], v) }).toEqual({ i, same: true }));
  });

  it('trims, counts ended entries and serves waiters the same with packed entries', async () => {
    const { journal, stream } = harness(300);
    for (let i = 0; i < 700; i++) stream(STREAMS['headers only']!);
    expect(journal.packed).toBeGreaterThan(0);
    expect(journal.size).toBe(300);
    const all = journal.entries;
    expect(all.map((e) => e.id)).toEqual(Array.from({ length: 300 }, (_, i) => 401 + i));
    expect((await journal.waitFor(300, 100)).map((e) => e.id)).toEqual(all.map((e) => e.id));
  });

  it('packs the shared, frozen header object of a repeated header map as one value, to the same bytes', () => {
    const { journal, stream } = harness(10_000);
    const bench = STREAMS['headers + buffered body (the bench)']!;
    // Other request headers first: the cache holds the last map of the process, whichever test sent it.
    stream([{ request_headers: { headers: { headers: [raw(':path', '/other')] }, end_of_stream: true } }]);
    const runs = [stream(bench), stream(bench), stream(bench)];
    const held = journal.entries.slice(-3);
    expect(held.map((e) => JSON.stringify(e))).toEqual(runs.map((r) => r.json));
    // The first stream's headers are its own object, the next ones share the frozen one (stream-journal.ts HeaderTexts).
    expect(Object.isFrozen(held[0]!.requestHeaders)).toBe(false);
    expect(Object.isFrozen(held[1]!.requestHeaders)).toBe(true);
    expect(held[2]!.requestHeaders).toBe(held[1]!.requestHeaders);
    expect(held[2]!.phases[0]!.headers).toBe(held[2]!.requestHeaders);
  });

  it('packs every later entry of a shape through its compiled check, to the same bytes', () => {
    const { journal, stream } = harness(10_000);
    // Each kind twice: the first packing finds the shape, the second goes through its compiled check.
    const before = [1, 2].flatMap(() => Object.entries(STREAMS).map(([kind, messages]) => ({ kind, ...stream(messages) })));
    for (let i = 0; i < 400; i++) stream(STREAMS['headers + buffered body (the bench)']!);
    expect(journal.packed).toBeGreaterThan(before.length);
    const byId = new Map(journal.entries.map((e) => [e.id, e]));
    for (const b of before) expect({ kind: b.kind, json: JSON.stringify(byId.get(b.id)) }).toEqual({ kind: b.kind, json: b.json });
  });

  it("accepts exactly the entries of its shape (keys in order, leaves, array lengths), any key's characters", () => {
    const LEAF: Shape = { k: 0, n: 1 };
    const obj = (keys: string[], kids: Shape[]): Shape => ({ k: 1, n: kids.reduce((a, c) => a + c.n, 0), keys, kids });
    const arr = (kids: Shape[]): Shape => ({ k: 2, n: kids.reduce((a, c) => a + c.n, 0), kids });
    const odd = ['a"b', "c'd", 'back\\slash', 'new\nline', 'sep\u2028x', '${x}', '`'];
    const shape = obj(['id', ...odd, 'list', 'frozen'], [LEAF, ...odd.map(() => LEAF), arr([LEAF, obj(['k'], [LEAF])]), LEAF]);
    const f = compileFiller(shape);
    const shared = Object.freeze({ request: 'r' });
    const make = () => ({ id: 1.25, ...Object.fromEntries(odd.map((k, i) => [k, i])), list: [null, { k: 'v' }], frozen: shared }) as Record<string, unknown>;
    const refs: unknown[] = [];
    const nums: number[] = [];
    // Written from where it is told (a ring slot): numbers that are not 32-bit integers apart, the rest as references.
    expect(f(make(), refs, 3, nums, 2, 16)).toBe(1);
    expect(nums.slice(2)).toEqual([1.25]);
    expect(refs.slice(3 + 1)).toEqual([...odd.map((_, i) => i), null, 'v', shared]);
    expect(refs[refs.length - 1]).toBe(shared);
    // More numbers than it may write: not of the shape.
    expect(f(make(), [], 0, [], 0, 0)).toBe(-1);
    const variants: Array<[string, (x: Record<string, unknown>) => Record<string, unknown>]> = [
      ['keys in another order', (x) => { const { id, ...rest } = x; return { ...rest, id }; }],
      ['an extra key', (x) => ({ ...x, more: 1 })],
      ['a missing key', (x) => { const { frozen: _, ...rest } = x; return rest; }],
      ['a tree where a leaf was', (x) => ({ ...x, id: { n: 1 } })],
      ['a frozen object where a tree was', (x) => ({ ...x, list: Object.freeze([null, { k: 'v' }]) })],
      ['a longer array', (x) => ({ ...x, list: [null, { k: 'v' }, 3] })],
      ['an object where an array was', (x) => ({ ...x, list: { 0: null, 1: { k: 'v' } } })],
      ['an array where an object was', (x) => ({ ...x, list: [null, ['v']] })],
    ];
    for (const [what, change] of variants) expect({ what, fits: f(change(make()), [], 0, [], 0, 16) }).toEqual({ what, fits: -1 });
    expect(f('text', [], 0, [], 0, 16)).toBe(-1);
    expect(f(null, [], 0, [], 0, 16)).toBe(-1);
  });
});
