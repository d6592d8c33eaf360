// Endpoint pickers. Each returns candidates in preference order: the first is the pick,
// the next ones are the fallbacks (the caller cuts the list to 1 + `fallbacks`).
import { createHash } from 'node:crypto';
import type { PickerConfig } from './mock-epp-config.ts';

export interface PickInput {
  /** Eligible endpoints (pool, narrowed by subset hint / conformance header), never empty. */
  candidates: readonly string[];
  headers: Readonly<Record<string, string>>;
  model: string | undefined;
}

export interface Picker {
  readonly name: string;
  order(input: PickInput): string[];
  /** Called when a stream that picked `endpoint` ends (least-loaded frees its slot). */
  release?(endpoint: string): void;
  /** Simulated queue depth per endpoint (least-loaded only). */
  depths?(): Record<string, number>;
}

/** mulberry32: a tiny seeded PRNG, so `seed` makes random choices repeatable. */
export function seededRandom(seed: number | undefined): () => number {
  if (seed === undefined) return Math.random;
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Rotates `list` so it starts at index i. */
function rotate(list: readonly string[], i: number): string[] {
  const n = list.length;
  const out = new Array<string>(n);
  for (let k = 0; k < n; k++) out[k] = list[(i + k) % n] as string;
  return out;
}

export class RoundRobinPicker implements Picker {
  readonly name = 'round-robin';
  // One counter per candidate set, so a narrowed set (subset hint, conformance header)
  // still cycles through all its members.
  #next = new Map<string, number>();
  // The whole pool is the usual candidate set: count it without building a key string.
  #pool: readonly string[] | undefined;
  #poolNext = 0;
  order({ candidates }: PickInput): string[] {
    if (candidates === this.#pool || this.#pool === undefined) {
      this.#pool = candidates;
      const i = this.#poolNext % candidates.length;
      this.#poolNext = i + 1;
      return rotate(candidates, i);
    }
    const key = candidates.join(',');
    const i = this.#next.get(key) ?? 0;
    this.#next.set(key, (i + 1) % candidates.length);
    if (this.#next.size > 10_000) this.#next.clear();
    return rotate(candidates, i % candidates.length);
  }
}

export class RandomPicker implements Picker {
  readonly name = 'random';
  #rand: () => number;
  constructor(seed?: number) {
    this.#rand = seededRandom(seed);
  }
  order({ candidates }: PickInput): string[] {
    return rotate(candidates, Math.floor(this.#rand() * candidates.length));
  }
}

export class WeightedPicker implements Picker {
  readonly name = 'weighted';
  #rand: () => number;
  #weights: Readonly<Record<string, number>>;
  constructor(weights: Readonly<Record<string, number>>, seed?: number) {
    this.#rand = seededRandom(seed);
    this.#weights = weights;
  }
  order({ candidates }: PickInput): string[] {
    const w = candidates.map((c) => this.#weights[c] ?? 1);
    const total = w.reduce((a, b) => a + b, 0);
    if (total <= 0) return [...candidates];
    let r = this.#rand() * total;
    let i = 0;
    for (; i < w.length - 1; i++) {
      r -= w[i] as number;
      if (r < 0) break;
    }
    return rotate(candidates, i);
  }
}

/** Rendezvous (highest random weight) hashing: stable per key, minimal movement on pool changes. */
export class ConsistentHashPicker implements Picker {
  readonly name = 'consistent-hash';
  readonly header: string | undefined;
  constructor(header?: string) {
    this.header = header?.toLowerCase();
  }
  order({ candidates, headers, model }: PickInput): string[] {
    const key = this.header ? headers[this.header] : model;
    if (key === undefined) return [...candidates];
    const scored = candidates.map((c) => ({ c, s: createHash('sha1').update(key).update('\0').update(c).digest().readUInt32BE(0) }));
    scored.sort((a, b) => b.s - a.s);
    return scored.map((x) => x.c);
  }
}

/** Picks the endpoint with the smallest simulated queue: one unit per open stream picked to it. */
export class LeastLoadedPicker implements Picker {
  readonly name = 'least-loaded';
  #depth = new Map<string, number>();
  #rr = 0;
  constructor(initialDepth: Readonly<Record<string, number>>) {
    for (const [k, v] of Object.entries(initialDepth)) this.#depth.set(k, v);
  }
  order({ candidates }: PickInput): string[] {
    // Ties broken round-robin so equal queues share the load.
    const start = this.#rr++ % candidates.length;
    const rotated = rotate(candidates, start);
    const sorted = rotated
      .map((c, i) => ({ c, i, d: this.#depth.get(c) ?? 0 }))
      .sort((a, b) => a.d - b.d || a.i - b.i)
      .map((x) => x.c);
    const first = sorted[0] as string;
    this.#depth.set(first, (this.#depth.get(first) ?? 0) + 1);
    return sorted;
  }
  release(endpoint: string): void {
    const d = this.#depth.get(endpoint);
    if (d !== undefined && d > 0) this.#depth.set(endpoint, d - 1);
  }
  depths(): Record<string, number> {
    return Object.fromEntries(this.#depth);
  }
}

export function createPicker(cfg: PickerConfig): Picker {
  switch (cfg.type) {
    case 'round-robin':
      return new RoundRobinPicker();
    case 'random':
      return new RandomPicker(cfg.seed);
    case 'weighted':
      return new WeightedPicker(cfg.weights, cfg.seed);
    case 'consistent-hash':
      return new ConsistentHashPicker(cfg.header);
    case 'least-loaded':
      return new LeastLoadedPicker(cfg.initialDepth);
  }
}
