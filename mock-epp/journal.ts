// The journal: one entry per ext_proc stream, what was received and what was answered.
// Bounded (oldest dropped), and waitable so tests and the admin long-poll can block on it.
import type { Json } from '../core/proto-struct.ts';
import { PackedEntry, packEntry } from './packed-entry.ts';

export interface JournalBody {
  /** Bytes received in this message (or in total, for the aggregated body). */
  size: number;
  /** Hex sha256 of those bytes. */
  sha256: string;
  /** Leading bytes, UTF-8 decoded (lossy), and the same bytes base64. */
  firstBytes: string;
  firstBytesBase64: string;
}

export interface JournalPhase {
  phase: 'request_headers' | 'request_body' | 'request_trailers' | 'response_headers' | 'response_body' | 'response_trailers';
  /** Milliseconds since the stream opened. */
  atMs: number;
  headers?: Record<string, string>;
  endOfStream?: boolean;
  body?: JournalBody;
  /** filter_metadata as plain JSON, when the message carried metadata_context. */
  metadataContext?: Record<string, Json>;
  attributes?: Record<string, Json>;
  observabilityMode?: boolean;
}

export interface JournalAnswer {
  /** The oneof sent (`request_headers`, `immediate_response`, ...) or `none` for an empty oneof. */
  kind: string;
  atMs: number;
  /** Milliseconds from the message this answers to the answer. */
  serviceTimeMs: number;
  setHeaders?: Record<string, string>;
  removeHeaders?: string[];
  /** envoy.lb dynamic metadata sent with it, as plain JSON. */
  dynamicMetadata?: Record<string, Json>;
  status?: number;
  bodySize?: number;
  streamedBody?: { size: number; endOfStream: boolean };
  modeOverride?: Record<string, string>;
  malformed?: string;
  /** clear_route_cache was set on this answer. */
  clearRouteCache?: boolean;
}

export type StreamEnd =
  | 'completed' // every expected answer sent and the client half-closed
  | 'client-cancelled'
  | 'closed-ok' // the mock ended the stream early with OK (rule `close`)
  | 'immediate-response'
  | 'grpc-error'
  | 'reset'
  | 'bad-input'
  | 'server-stopped';

export interface JournalEntry {
  /** 1-based ordinal of the stream since the server started. */
  id: number;
  startedAt: string;
  endedAt?: string;
  durationMs?: number;
  peer: string;
  /** protocol_config of the first message, when present. */
  protocolConfig?: { requestBodyMode: string; responseBodyMode: string; sendBodyWithoutWaitingForHeaderResponse: boolean };
  /** Body modes in effect (from protocol_config or the config default). */
  bodyMode: { request: string; response: string };
  /** Request headers (lower-case keys, pseudo-headers included). */
  requestHeaders?: Record<string, string>;
  /** X-Gateway-Model-Name as received (set by body-based routing before the EPP), when present. */
  model?: string;
  requestBody?: JournalBody;
  responseBody?: JournalBody;
  phases: JournalPhase[];
  /** All metadata_context namespaces seen, merged, as plain JSON. */
  metadataContext: Record<string, Json>;
  subsetHint?: string[];
  /** What the data plane reported as served (envoy.lb / x-gateway-destination-endpoint-served). */
  servedEndpoint?: string;
  /** The pick sent, if any. */
  pick?: { value: string; endpoints: string[]; source: 'picker' | 'conformance-header' | 'rule' | 'directive' | 'malformed' };
  /** The fidelity profile that answered this stream (mock-epp/fidelity-profiles.ts). */
  profile?: string;
  /** Why no endpoint could be picked, when none could (answered as the profile's noEndpoint says). */
  noEndpoint?: string;
  /** Name (or `rules[i]`) of the rule that matched. */
  rule?: string;
  directives?: Record<string, string>;
  answers: JournalAnswer[];
  /** How the stream ended (absent while open). */
  end?: { how: StreamEnd; grpcCode?: number; detail?: string };
  /** Protocol problems seen on this stream (body before headers, second headers, ...). */
  problems: string[];
}

interface Waiter {
  n: number;
  resolve: (entries: JournalEntry[]) => void;
  timer: NodeJS.Timeout;
  reject: (e: Error) => void;
}

// An ended entry is packed (packed-entry.ts) once this many streams have opened after it: by
// then nothing writes to it any more, and it is still young, so its tree dies in the young
// generation instead of being copied twice. Open entries stay live objects.
const PACK_LAG = 256;

type Held = JournalEntry | PackedEntry;
const isEnded = (e: Held): boolean => e instanceof PackedEntry || e.end !== undefined;
const viewOf = (e: Held): JournalEntry => (e instanceof PackedEntry ? e.view() : e);

export class Journal {
  #entries: Held[] = [];
  // Ended entries among those held, and the id of the oldest held entry (ids only grow), so
  // waiters are checked in O(1) per ended stream instead of a scan of the whole journal.
  #endedHeld = 0;
  #minId = Number.POSITIVE_INFINITY;
  #waiters = new Set<Waiter>();
  maxEntries: number;

  constructor(maxEntries: number) {
    this.maxEntries = maxEntries;
  }

  /** The newest `maxEntries` entries, oldest first (a new array; ended entries are rebuilt from their packed form). */
  get entries(): JournalEntry[] {
    if (this.#entries.length > this.maxEntries) this.#trim();
    return this.#entries.map(viewOf);
  }

  /** How many entries `entries` would return, without building them. */
  get size(): number {
    return Math.min(this.#entries.length, this.maxEntries);
  }

  /** How many held entries are packed (for tests). */
  get packed(): number {
    let n = 0;
    for (const e of this.#entries) if (e instanceof PackedEntry) n++;
    return n;
  }

  #trim(): void {
    const removed = this.#entries.splice(0, this.#entries.length - this.maxEntries);
    for (const e of removed) if (isEnded(e)) this.#endedHeld--;
    this.#minId = this.#entries[0]?.id ?? Number.POSITIVE_INFINITY;
  }

  /** Adds an open entry (visible at once; `end` is set when the stream ends). */
  open(entry: JournalEntry): void {
    if (this.#entries.length === 0) this.#minId = entry.id;
    this.#entries.push(entry);
    const i = this.#entries.length - 1 - PACK_LAG;
    const old = this.#entries[i];
    if (old !== undefined && !(old instanceof PackedEntry) && old.end !== undefined) {
      const p = packEntry(old);
      if (p) this.#entries[i] = p;
    }
    // Trim in batches (a quarter of the bound) so a full journal costs O(1) per stream, not a shift each time.
    if (this.#entries.length > this.maxEntries + Math.max(1, this.maxEntries >> 2)) this.#trim();
  }

  /** Called once `entry.end` is set: wakes waiters counting ended entries. */
  ended(entry: JournalEntry): void {
    if (entry.id >= this.#minId) this.#endedHeld++;
    for (const w of this.#waiters) this.#check(w);
  }

  clear(): void {
    this.#entries = [];
    this.#endedHeld = 0;
    this.#minId = Number.POSITIVE_INFINITY;
  }

  #endedEntries(): JournalEntry[] {
    if (this.#entries.length > this.maxEntries) this.#trim();
    const out: JournalEntry[] = [];
    for (const e of this.#entries) if (isEnded(e)) out.push(viewOf(e));
    return out;
  }

  #check(w: Waiter): void {
    if (this.#endedHeld < w.n) return;
    const done = this.#endedEntries();
    if (done.length >= w.n) {
      clearTimeout(w.timer);
      this.#waiters.delete(w);
      w.resolve(done);
    }
  }

  /** Resolves with the ended entries once at least n streams have ended; rejects on timeout. */
  waitFor(n: number, timeoutMs: number): Promise<JournalEntry[]> {
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        n,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(w);
          reject(new Error(`journal has ${this.#endedEntries().length} ended entries, waited for ${n} (${timeoutMs} ms)`));
        }, timeoutMs),
      };
      this.#waiters.add(w);
      this.#check(w);
    });
  }

  /** Rejects every pending waiter (server stopping). */
  close(): void {
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.reject(new Error('mock EPP stopped'));
    }
    this.#waiters.clear();
  }
}
