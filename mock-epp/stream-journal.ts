// One stream's journal entry and metrics, shared by the EPP and BBR sessions: opened with the
// stream, answers recorded as they are written, problems logged and counted, closed once.
import { headerValueText } from '../core/headers.ts';
import type { HeaderMap, HeaderValue } from '../core/proto.ts';
import type { JournalAnswer, JournalEntry, StreamEnd } from './journal.ts';
import type { SessionEnv } from './session-env.ts';

// Streams started in the same millisecond share one timestamp string, and the text up to the
// second is made once a second: Date#toISOString costs ~0.6 µs, twice per stream at 5,000
// streams/s (docs/BENCHMARKS.md "Mock EPP cost, 2026-11-30", fifth pass). Same text, years
// 0000-9999 (stream-journal.test.ts compares it with toISOString).
let isoMs = Number.NaN;
let isoText = '';
let isoSecond = Number.NaN;
let isoPrefix = '';
/** `new Date(now).toISOString()`, cheaper for times close together. */
export function isoAt(now: number): string {
  if (now === isoMs) return isoText;
  const ms = now % 1000;
  const second = now - ms;
  if (ms < 0 || !Number.isInteger(now)) return new Date(now).toISOString();
  if (second !== isoSecond) {
    isoSecond = second;
    // "YYYY-MM-DDTHH:MM:SS." of a time whose milliseconds are 0.
    isoPrefix = new Date(second).toISOString().slice(0, -4);
  }
  isoMs = now;
  isoText = `${isoPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
  return isoText;
}
export function isoNow(): string {
  return isoAt(Date.now());
}

// The journal keeps its entries (10,000 by default) long enough for V8 to move them to the old
// generation, copying every object and string they hold on the way: that copying, not the work
// of answering, was the mock's largest cost per stream (docs/BENCHMARKS.md "Mock EPP cost,
// 2026-11-30"). Header names, most header values and body summaries repeat from stream to
// stream, so entries share one string each instead of holding copies. Bounded: the table is
// dropped when full (the strings live on in the entries that hold them).
const INTERN_MAX_LENGTH = 128;
const INTERN_MAX_ENTRIES = 8192;
let interned = new Map<string, string>();
export function intern(s: string): string {
  if (s.length > INTERN_MAX_LENGTH) return s;
  const known = interned.get(s);
  if (known !== undefined) return known;
  if (interned.size >= INTERN_MAX_ENTRIES) interned = new Map();
  interned.set(s, s);
  return s;
}

// The header texts of the last header map of one kind, by position: a data plane sends the
// same headers in the same order on most streams, and each decoded header brings a new key
// string and new value bytes. A key's text equal to the one cached is replaced by the cached
// string (already a property name: the object's store finds it without hashing the new one);
// value bytes equal to the cached copy reuse its text (no latin1 decode, no intern lookup of a
// new string). When the whole map is the last one again, the journal gets one frozen object
// for it, shared by the streams that send it: the session reads it, the journal packs it as
// one value (packed-entry.ts keeps frozen objects whole) instead of a key check and a store per
// header. A miss costs a compare and, for short values, a copy. Bounded: HEADER_CACHE headers.
const HEADER_CACHE = 32;

export class HeaderTexts {
  readonly #keys: string[] = [];
  /** A copy of the value's bytes (undefined: the value came as `value`, or was too long to keep). */
  readonly #raw: (Buffer | undefined)[] = [];
  /** The value's text (undefined: too long to keep). */
  readonly #text: (string | undefined)[] = [];
  /** Headers in the last map when all of them are cached (it can be matched whole), else -1. */
  #count = -1;
  #last: Record<string, string> | undefined;
  #shared: Readonly<Record<string, string>> | undefined;

  /** headerMapToObject (core/headers.ts) for the journal: values interned, texts reused. */
  object(map: HeaderMap | undefined): Record<string, string> {
    const hs = map?.headers;
    if (hs === undefined || hs === null) return {};
    if (hs.length === this.#count && this.#sameAsLast(hs)) {
      // Key order kept: a copy of the last object, made once.
      return (this.#shared ??= Object.freeze({ ...(this.#last as Record<string, string>) }));
    }
    const out: Record<string, string> = {};
    let whole = hs.length <= HEADER_CACHE;
    for (let i = 0; i < hs.length; i++) {
      const h = hs[i] as HeaderValue;
      let key = h.key;
      let v: string;
      if (i < HEADER_CACHE) {
        const known = this.#keys[i];
        if (known === key) key = known;
        else this.#keys[i] = key;
        v = this.#textAt(i, h);
        if (this.#text[i] === undefined) whole = false;
      } else v = intern(headerValueText(h));
      // Names are not interned: V8 internalizes a property name itself.
      const prev = out[key];
      out[key] = prev === undefined ? v : `${prev},${v}`;
    }
    this.#count = whole ? hs.length : -1;
    this.#last = out;
    this.#shared = undefined;
    return out;
  }

  #sameAsLast(hs: readonly HeaderValue[]): boolean {
    for (let i = 0; i < hs.length; i++) {
      const h = hs[i] as HeaderValue;
      if (h.key !== this.#keys[i]) return false;
      const text = this.#text[i];
      const seen = this.#raw[i];
      const raw = h.raw_value;
      if (raw !== undefined && raw !== null && raw.length > 0) {
        if (seen === undefined || !raw.equals(seen)) return false;
      } else if (seen !== undefined || text === undefined || (h.value ?? '') !== text) return false;
    }
    return true;
  }

  /** Header i's text (interned), from the cache when its bytes are the same; the cache updated. */
  #textAt(i: number, h: HeaderValue): string {
    const raw = h.raw_value;
    if (raw === undefined || raw === null || raw.length === 0) {
      const text = intern(h.value ?? '');
      this.#raw[i] = undefined;
      this.#text[i] = text;
      return text;
    }
    const seen = this.#raw[i];
    if (seen !== undefined && raw.equals(seen)) return this.#text[i] as string;
    const text = intern(headerValueText(h));
    // A copy: the decoded bytes are a view of the message's buffer, which may be reused.
    const keep = raw.length <= INTERN_MAX_LENGTH;
    this.#raw[i] = keep ? Buffer.from(raw) : undefined;
    this.#text[i] = keep ? text : undefined;
    return text;
  }
}

// One cache per kind of map, so request headers, response headers and trailers do not evict each other.
const requestHeaderTexts = new HeaderTexts();
const responseHeaderTexts = new HeaderTexts();
const trailerTexts = new HeaderTexts();
export const HEADER_TEXTS = { request: requestHeaderTexts, response: responseHeaderTexts, trailers: trailerTexts } as const;

/**
 * headerMapToObject (core/headers.ts) for the journal, through the cache of its kind of map
 * (HeaderTexts): values interned; a map equal to the last one of its kind gets the shared,
 * frozen object of that map.
 */
export function journalHeaders(map: HeaderMap | undefined, kind: keyof typeof HEADER_TEXTS = 'request'): Record<string, string> {
  return HEADER_TEXTS[kind].object(map);
}

// Most entries have no problems and no metadata: they share these until a first one comes.
const NO_PROBLEMS: string[] = Object.freeze([]) as unknown as string[];
const NO_METADATA = Object.freeze({}) as JournalEntry['metadataContext'];
const NO_BODY_MODE = Object.freeze({ request: '', response: '' });

/** Milliseconds from `t0` to `t1` (performance.now() readings), to the µs. */
function msBetween(t0: number, t1: number): number {
  return Math.round((t1 - t0) * 1000) / 1000;
}

export class StreamJournal {
  readonly entry: JournalEntry;
  readonly #env: SessionEnv;
  readonly #t0 = performance.now();
  readonly #role: string;

  /** Opens the stream's entry (visible in the journal at once) and counts the stream. */
  constructor(env: SessionEnv, peer: string, profile: string | undefined, role = '') {
    this.#env = env;
    this.#role = role;
    const e: JournalEntry = {
      id: env.nextId(),
      startedAt: isoNow(),
      peer,
      bodyMode: NO_BODY_MODE,
      phases: [],
      metadataContext: NO_METADATA,
      answers: [],
      problems: NO_PROBLEMS,
    };
    if (profile !== undefined) e.profile = profile;
    this.entry = e;
    env.metrics.streamsTotal++;
    env.metrics.streamsActive++;
    env.journal.open(e);
  }

  /** Milliseconds since the stream opened. */
  ms(): number {
    return msBetween(this.#t0, performance.now());
  }

  /** Milliseconds from the stream's open to `t` (a performance.now() reading, e.g. a message's arrival). */
  msAt(t: number): number {
    return msBetween(this.#t0, t);
  }

  /** Records an answer about to be written (times from the stream's open and from the message it answers, received at tIn). */
  answered(a: Omit<JournalAnswer, 'atMs' | 'serviceTimeMs'>, tIn: number): void {
    const ans = a as JournalAnswer;
    const now = performance.now();
    ans.atMs = msBetween(this.#t0, now);
    ans.serviceTimeMs = msBetween(tIn, now);
    this.entry.answers.push(ans);
    this.#env.metrics.answers.inc(a.kind);
    this.#env.metrics.observeServiceTime(ans.serviceTimeMs);
  }

  /** A protocol problem: in the entry, counted by reason, logged. */
  problem(reason: string, detail: string): void {
    this.note(`${reason}: ${detail}`);
    this.#env.metrics.badInput.inc(reason);
    this.#env.logger.warn({ stream: this.entry.id, reason, detail }, `bad input on ext_proc stream${this.#role}`);
  }

  /** A line in the entry's problems, neither counted nor logged. */
  note(text: string): void {
    if (this.entry.problems === NO_PROBLEMS) this.entry.problems = [];
    this.entry.problems.push(text);
  }

  /** Merges metadata_context namespaces into the entry's. */
  mergeMetadata(md: JournalEntry['metadataContext']): void {
    if (this.entry.metadataContext === NO_METADATA) this.entry.metadataContext = {};
    Object.assign(this.entry.metadataContext, md);
  }

  /** Ends the entry (times, how) and wakes the journal's waiters; the caller adds what it owns first. */
  end(how: StreamEnd, grpcCode?: number, detail?: string): void {
    const e = this.entry;
    e.endedAt = isoNow();
    e.durationMs = this.ms();
    const end: NonNullable<JournalEntry['end']> = { how };
    if (grpcCode !== undefined) end.grpcCode = grpcCode;
    if (detail !== undefined) end.detail = detail;
    e.end = end;
    const m = this.#env.metrics;
    m.streamsActive--;
    m.streamEnds.inc(how);
    this.#env.journal.ended(e);
  }
}
