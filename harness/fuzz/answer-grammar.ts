// The grammar of ext_proc answer sequences, as fast-check arbitraries: valid answers in valid
// and invalid orders, wrong phases and empty oneofs, empty and oversized mutations, odd header
// names and values (CR/LF, non-UTF-8, huge), `append` in every form, immediate responses with
// odd statuses, dynamic metadata of wrong types, delays around the data plane's timeout, gRPC
// errors, resets, hangs, undecodable bytes and streams closed early. Weighted so most streams
// stay near the valid path (a plane must get through them) with a fault somewhere.
// fast-check shrinks every part of it towards the valid, short answer.
import fc from 'fast-check';
import type { AnswerEmit, AnswerPhase, AppendForm, FuzzEmit, FuzzHeader, FuzzScript, ImmediateEmit, RawEmit, RestMode } from '../../mock-epp/fuzz-script.ts';

/** Drops undefined members, so generated values read (and save) as the minimal JSON they are. */
export function compact<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}

const PHASES: readonly AnswerPhase[] = ['request_headers', 'response_headers', 'request_body', 'response_body', 'request_trailers', 'response_trailers'];

export const appendForm: fc.Arbitrary<AppendForm> = fc.oneof(
  { arbitrary: fc.constant<AppendForm>('absent'), weight: 3 },
  { arbitrary: fc.constantFrom<AppendForm>('true', 'false', 'empty'), weight: 2 },
);

const plainName = fc.constantFrom('x-fuzz', 'x-fuzz-b', 'x-model', 'x-request-id', 'accept');
const oddName = fc.oneof(
  fc.constantFrom(
    'X-Upper-Case',
    ':path',
    ':authority',
    ':method',
    'host',
    'content-length',
    'transfer-encoding',
    'connection',
    'x-gateway-destination-endpoint',
    '',
    'bad name',
    'x\r\ninjected',
    'x-\u00e9t\u00e9',
  ),
  fc.integer({ min: 1, max: 16_384 }).map((n) => `x-${'n'.repeat(n)}`),
);
const plainValue = fc.constantFrom('1', 'fuzz', 'application/json', '');
const oddValue: fc.Arbitrary<Pick<FuzzHeader, 'value' | 'base64'>> = fc.oneof(
  fc.constantFrom('a\r\nx-injected: 1', 'a\nb', 'nul\u0000byte', ' padded ', '\u00ff\u00fe latin1').map((value) => ({ value })),
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => ({ value: Buffer.from(b).toString('base64'), base64: true })),
  fc.constantFrom(4096, 65_536, 1_048_576).map((n) => ({ value: 'v'.repeat(n) })),
);

export const fuzzHeader: fc.Arbitrary<FuzzHeader> = fc
  .record({
    name: fc.oneof({ arbitrary: plainName, weight: 4 }, { arbitrary: oddName, weight: 1 }),
    v: fc.oneof({ arbitrary: plainValue.map((value) => ({ value })), weight: 4 }, { arbitrary: oddValue, weight: 1 }),
    field: fc.oneof({ arbitrary: fc.constant<'raw_value' | undefined>(undefined), weight: 6 }, { arbitrary: fc.constantFrom<'value' | 'both'>('value', 'both'), weight: 1 }),
    append: fc.option(appendForm, { nil: undefined }),
    appendAction: fc.option(fc.constantFrom(0, 1, 2, 3, 7), { nil: undefined, freq: 4 }),
    keepEmptyValue: fc.option(fc.constant(true), { nil: undefined, freq: 4 }),
  })
  .map(({ name, v, ...rest }) => compact({ name, ...v, ...rest }));

const oddEndpoint = fc.constantFrom('none', 'not-an-endpoint', '127.0.0.1:1', '127.0.0.1:99999', '', '[::1]:0', `10.${'9'.repeat(300)}:80`, '127.0.0.1:1,pick');

const answerPhase = fc.oneof(
  { arbitrary: fc.constant<AnswerEmit['phase']>('auto'), weight: 8 },
  { arbitrary: fc.constant<AnswerEmit['phase']>('none'), weight: 1 },
  { arbitrary: fc.constantFrom<AnswerEmit['phase']>(...PHASES), weight: 2 },
);

/** Anything an answer may carry. */
export const wildAnswerEmit: fc.Arbitrary<AnswerEmit> = fc
  .record({
    phase: answerPhase,
    endpoint: fc.oneof({ arbitrary: fc.constant<string | undefined>(undefined), weight: 8 }, { arbitrary: oddEndpoint, weight: 1 }),
    placement: fc.oneof({ arbitrary: fc.constant<AnswerEmit['placement']>(undefined), weight: 6 }, { arbitrary: fc.constantFrom<AnswerEmit['placement']>('header', 'metadata'), weight: 1 }),
    endpointAppend: fc.option(appendForm, { nil: undefined, freq: 2 }),
    metadata: fc.oneof(
      { arbitrary: fc.constant<AnswerEmit['metadata']>(undefined), weight: 8 },
      { arbitrary: fc.constantFrom<AnswerEmit['metadata']>('number', 'list', 'struct', 'bool', 'wrong-namespace', 'none'), weight: 1 },
    ),
    headers: fc.option(fc.array(fuzzHeader, { minLength: 1, maxLength: 3 }), { nil: undefined, freq: 3 }),
    removeHeaders: fc.option(fc.array(fc.constantFrom('x-fuzz', 'host', ':path', 'content-length', 'x-gateway-destination-endpoint', ''), { minLength: 1, maxLength: 2 }), { nil: undefined, freq: 5 }),
    status: fc.option(fc.constantFrom(0, 1, 7), { nil: undefined, freq: 5 }),
    clearRouteCache: fc.option(fc.constant(false), { nil: undefined, freq: 5 }),
    body: fc.option(
      fc.record({ kind: fc.constantFrom<'echo' | 'replace' | 'clear' | 'streamed'>('echo', 'replace', 'clear', 'streamed'), size: fc.constantFrom(0, 1, 1000, 70_000), endOfStream: fc.option(fc.boolean(), { nil: undefined }) }).map(compact),
      { nil: undefined, freq: 4 },
    ),
    overrideTimeoutMs: fc.option(fc.constantFrom(0, 1, 100, 5000), { nil: undefined, freq: 8 }),
    modeOverride: fc.option(
      fc.record({ request_body_mode: fc.constantFrom(0, 1, 2, 3, 4, 9), response_header_mode: fc.constantFrom(0, 1, 2, 5) }),
      { nil: undefined, freq: 8 },
    ),
  })
  .map((r) => compact({ do: 'answer' as const, ...r }));

/**
 * A valid answer of the auto phase that every plane must follow exactly: `append` in each form
 * on the destination and on ordinary headers (the field third-party planes decoded wrongly).
 */
export const validAnswerEmit: fc.Arbitrary<AnswerEmit> = fc
  .record({
    endpointAppend: fc.option(appendForm, { nil: undefined }),
    headers: fc.option(
      fc.array(
        fc.record({ name: plainName, value: fc.constantFrom('1', 'fuzz'), append: fc.option(appendForm, { nil: undefined }), appendAction: fc.option(fc.constantFrom(0, 1, 2, 3), { nil: undefined, freq: 4 }) }).map(compact),
        { minLength: 1, maxLength: 2 },
      ),
      { nil: undefined, freq: 3 },
    ),
  })
  .map((r) => compact({ do: 'answer' as const, phase: 'auto' as const, ...r }));

export const answerEmit: fc.Arbitrary<AnswerEmit> = fc.oneof({ arbitrary: validAnswerEmit, weight: 3 }, { arbitrary: wildAnswerEmit, weight: 2 });

/** Statuses an ImmediateResponse may carry, the odd ones included (missing, < 200, > 599). */
const immediateStatus = fc.oneof(
  { arbitrary: fc.constantFrom(200, 204, 302, 400, 403, 404, 413, 429, 500, 502, 503, 504), weight: 4 },
  { arbitrary: fc.integer({ min: 200, max: 599 }), weight: 1 },
  { arbitrary: fc.constantFrom<number | undefined>(undefined, 0, 1, 100, 199, 600, 999, 1000, 65_535), weight: 1 },
);

export const immediateEmit: fc.Arbitrary<ImmediateEmit> = fc
  .record({
    status: immediateStatus,
    headers: fc.option(fc.array(fuzzHeader, { minLength: 1, maxLength: 3 }), { nil: undefined, freq: 3 }),
    bodySize: fc.option(fc.constantFrom(1, 100, 65_536, 1_048_576), { nil: undefined, freq: 2 }),
    grpcStatus: fc.option(fc.constantFrom(0, 7, 16), { nil: undefined, freq: 5 }),
    details: fc.option(fc.constantFrom('eppkit_fuzz', '\u00e9\r\n'), { nil: undefined, freq: 5 }),
  })
  .map((r) => compact({ do: 'immediate' as const, ...r }));

export const rawEmit: fc.Arbitrary<RawEmit> = fc
  .record({ kind: fc.constantFrom<RawEmit['kind']>('garbage', 'truncated', 'unknown-field', 'empty-frame', 'append-as-varint'), size: fc.option(fc.integer({ min: 1, max: 4096 }), { nil: undefined }) })
  .map((r) => compact({ do: 'raw' as const, ...r }));

/** Delays as fractions of the data plane's per-message timeout: well under, near (both sides) and well over. */
export function delayEmit(timeoutMs: number): fc.Arbitrary<FuzzEmit> {
  return fc.constantFrom(0, 0.1, 0.5, 0.9, 1.1, 1.5, 3).map((f) => ({ do: 'delay' as const, ms: Math.round(timeoutMs * f) }));
}

export const endEmit: fc.Arbitrary<FuzzEmit> = fc.constantFrom(0, 1, 2, 3, 4, 8, 13, 14, 16).map((code) => ({ do: 'end' as const, code }));

export function fuzzEmit(timeoutMs: number): fc.Arbitrary<FuzzEmit> {
  return fc.oneof(
    { arbitrary: answerEmit, weight: 12 },
    { arbitrary: immediateEmit, weight: 2 },
    { arbitrary: rawEmit, weight: 1 },
    { arbitrary: delayEmit(timeoutMs), weight: 2 },
    { arbitrary: endEmit, weight: 1 },
    { arbitrary: fc.constant<FuzzEmit>({ do: 'reset' }), weight: 1 },
    { arbitrary: fc.constant<FuzzEmit>({ do: 'hang' }), weight: 1 },
  );
}

export const restMode: fc.Arbitrary<RestMode> = fc.oneof(
  { arbitrary: fc.constant<RestMode>('valid'), weight: 10 },
  { arbitrary: fc.constantFrom<RestMode>('hang', 'close', 'reset'), weight: 1 },
);

/** A stream's script: up to four scripted turns (each up to three emits), then the rest. */
export function fuzzScript(timeoutMs: number): fc.Arbitrary<FuzzScript> {
  return fc
    .record({
      // No turn at all (the real EPP's answers throughout) is common: most streams must route.
      turns: fc.oneof({ arbitrary: fc.constant<FuzzEmit[][]>([]), weight: 1 }, { arbitrary: fc.array(fc.array(fuzzEmit(timeoutMs), { maxLength: 3 }), { minLength: 1, maxLength: 4 }), weight: 2 }),
      rest: restMode,
      restAppend: fc.option(appendForm, { nil: undefined }),
    })
    .map(compact);
}
