// The journal: one entry per ext_proc stream, what was received and what was answered.
// Bounded (oldest dropped), and waitable so tests and the admin long-poll can block on it.
import type { Json } from '../core/proto-struct.ts';
import { PackedEntry, PackedRing, packEntry } from './packed-entry.ts';

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

// Where a held entry is: open (or unpackable), the live object; packed on its own; packed into the ring.
const LIVE = 0;
const OWN = 1;
const RING = 2;

/**
 * The newest `maxEntries` entries in a ring: each slot holds an open entry as the live object
 * its session writes, and, once its stream has ended, the same entry packed (packed-entry.ts)
 * into the slot of a PackedRing, so the entries the journal keeps cost the young generation
 * nothing (docs/BENCHMARKS.md "Mock EPP cost, 2026-11-30", fifth pass). Reads rebuild them.
 */
export class Journal {
  #cap: number;
  /** Slot of the oldest held entry, and how many are held. */
  #head = 0;
  #count = 0;
  /** Per slot: the live entry or the one packed on its own (undefined when in the ring), its id, where it is. */
  #items: (JournalEntry | PackedEntry | undefined)[] = [];
  #ids: number[] = [];
  #kinds: number[] = [];
  #ring: PackedRing;
  // Ended entries among those held, so waiters are checked in O(1) per ended stream instead of a scan of the whole journal.
  #endedHeld = 0;
  #waiters = new Set<Waiter>();

  constructor(maxEntries: number) {
    this.#cap = maxEntries;
    this.#ring = new PackedRing(maxEntries);
  }

  get maxEntries(): number {
    return this.#cap;
  }

  /** A new bound (config swap): the newest entries are kept, up to it. */
  set maxEntries(n: number) {
    if (n === this.#cap) return;
    const keep: Array<JournalEntry | PackedEntry> = [];
    const ended: boolean[] = [];
    for (let i = Math.max(0, this.#count - n); i < this.#count; i++) {
      const slot = this.#slot(i);
      keep.push(this.#kinds[slot] === RING ? this.#ring.view(slot) : (this.#items[slot] as JournalEntry | PackedEntry));
      ended.push(this.#isEnded(slot));
    }
    this.#cap = n;
    this.clear();
    keep.forEach((e, i) => {
      const slot = this.#push(e, e instanceof PackedEntry ? OWN : LIVE);
      if (ended[i]) {
        this.#endedHeld++;
        if (!(e instanceof PackedEntry)) this.#pack(slot, e);
      }
    });
  }

  /** The newest `maxEntries` entries, oldest first (a new array; ended entries are rebuilt from their packed form). */
  get entries(): JournalEntry[] {
    const out: JournalEntry[] = [];
    for (let i = 0; i < this.#count; i++) out.push(this.#view(this.#slot(i)));
    return out;
  }

  /** How many entries `entries` would return, without building them. */
  get size(): number {
    return this.#count;
  }

  /** How many held entries are packed (for tests). */
  get packed(): number {
    let n = 0;
    for (let i = 0; i < this.#count; i++) if (this.#kinds[this.#slot(i)] !== LIVE) n++;
    return n;
  }

  #slot(i: number): number {
    const s = this.#head + i;
    return s >= this.#cap ? s - this.#cap : s;
  }

  #isEnded(slot: number): boolean {
    return this.#kinds[slot] !== LIVE || (this.#items[slot] as JournalEntry).end !== undefined;
  }

  #view(slot: number): JournalEntry {
    const k = this.#kinds[slot];
    if (k === RING) return this.#ring.view(slot);
    const e = this.#items[slot] as JournalEntry | PackedEntry;
    return k === OWN ? (e as PackedEntry).view() : (e as JournalEntry);
  }

  /** Puts an entry after the newest, dropping the oldest when full; returns its slot. */
  #push(e: JournalEntry | PackedEntry, kind: number): number {
    if (this.#count === this.#cap) {
      const old = this.#head;
      if (this.#isEnded(old)) this.#endedHeld--;
      if (this.#kinds[old] === RING) this.#ring.free(old);
      this.#head = old + 1 === this.#cap ? 0 : old + 1;
      this.#count--;
    }
    const slot = this.#slot(this.#count);
    if (slot === this.#items.length) {
      this.#items.push(e);
      this.#ids.push(e.id);
      this.#kinds.push(kind);
    } else {
      this.#items[slot] = e;
      this.#ids[slot] = e.id;
      this.#kinds[slot] = kind;
    }
    this.#count++;
    return slot;
  }

  /** Packs the ended entry in `slot`: into the ring, or on its own when too big for it, or not at all. */
  #pack(slot: number, e: JournalEntry): void {
    if (this.#ring.pack(slot, e)) {
      this.#items[slot] = undefined;
      this.#kinds[slot] = RING;
      return;
    }
    const p = packEntry(e);
    if (p) {
      this.#items[slot] = p;
      this.#kinds[slot] = OWN;
    }
  }

  /** The slot holding the entry with this id (ids grow from the oldest held to the newest), or -1. */
  #find(id: number): number {
    let lo = 0;
    let hi = this.#count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const slot = this.#slot(mid);
      const at = this.#ids[slot] as number;
      if (at === id) return slot;
      if (at < id) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Adds an open entry (visible at once; `end` is set when the stream ends). */
  open(entry: JournalEntry): void {
    if (this.#cap > 0) this.#push(entry, LIVE);
  }

  /** Called once `entry.end` is set: packs it and wakes waiters counting ended entries. */
  ended(entry: JournalEntry): void {
    // The newest entries end first, mostly: look there before searching.
    const newest = this.#count > 0 ? this.#slot(this.#count - 1) : -1;
    const slot = newest >= 0 && this.#items[newest] === entry ? newest : this.#find(entry.id);
    if (slot >= 0 && entry.end !== undefined && this.#kinds[slot] === LIVE && this.#items[slot] === entry) {
      this.#endedHeld++;
      this.#pack(slot, entry);
    }
    for (const w of this.#waiters) this.#check(w);
  }

  clear(): void {
    this.#head = 0;
    this.#count = 0;
    this.#items = [];
    this.#ids = [];
    this.#kinds = [];
    this.#ring = new PackedRing(this.#cap);
    this.#endedHeld = 0;
  }

  #endedEntries(): JournalEntry[] {
    const out: JournalEntry[] = [];
    for (let i = 0; i < this.#count; i++) {
      const slot = this.#slot(i);
      if (this.#isEnded(slot)) out.push(this.#view(slot));
    }
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
