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

// The header texts of the last header maps, by position: a data plane sends the same headers
// in the same order on most streams, and each decoded header brings a new key string and new
// value bytes. The key's text equal to the one cached is replaced by the cached string (already
// a property name, so the object's store finds it without hashing the new one), and value bytes
// equal to the cached copy reuse its text (no latin1 decode, no intern lookup of a new string).
// A miss costs a compare and, for short values, a copy. Bounded: the first HEADER_CACHE headers.
const HEADER_CACHE = 32;
const cachedKeys: string[] = [];
const cachedRaw: (Buffer | undefined)[] = [];
const cachedText: string[] = [];

/** The journal's text of header `i` of a map (interned), from the cache when its bytes are the same. */
function headerText(i: number, h: HeaderValue): string {
  const raw = h.raw_value as Buffer | undefined;
  if (raw === undefined || raw === null || raw.length === 0) return intern(h.value ?? '');
  if (i < HEADER_CACHE) {
    const seen = cachedRaw[i];
    if (seen !== undefined && raw.equals(seen)) return cachedText[i] as string;
    const text = intern(headerValueText(h));
    // A copy: the decoded bytes are a view of the message's buffer.
    cachedRaw[i] = raw.length <= INTERN_MAX_LENGTH ? Buffer.from(raw) : undefined;
    cachedText[i] = text;
    return text;
  }
  return intern(headerValueText(h));
}

/**
 * headerMapToObject (core/headers.ts) for the journal: values interned, the texts of headers
 * seen at the same place in the last maps reused. Names are not interned: a property name is
 * internalized by V8 itself (one string per name, held by the object's hidden class).
 */
export function journalHeaders(map: HeaderMap | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const hs = map?.headers;
  if (hs === undefined || hs === null) return out;
  for (let i = 0; i < hs.length; i++) {
    const h = hs[i] as HeaderValue;
    let key = h.key;
    if (i < HEADER_CACHE) {
      const known = cachedKeys[i];
      if (known === key) key = known;
      else cachedKeys[i] = key;
    }
    const prev = out[key];
    const v = headerText(i, h);
    out[key] = prev === undefined ? v : `${prev},${v}`;
  }
  return out;
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
