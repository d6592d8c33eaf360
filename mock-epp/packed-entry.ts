// An ended journal entry in a compact form: its leaf values in order, and the shape of the tree
// they came from (keys in their order, arrays' lengths) shared by every entry of that shape.
// The journal holds 10,000 entries (2 s of streams at 5,000/s), so each one outlives two
// young-generation GCs. As a tree of ~25 objects it held 1,286 bytes of heap, as a values array
// 655 (heap snapshots of 10,000 bench streams; docs/BENCHMARKS.md "Mock EPP cost, 2026-11-30"),
// and those survivors were what made the mock's scavenges long (its p99) and its heap large
// (its page faults). So the journal writes them into a ring (PackedRing) allocated once, in the
// old generation: references in one array, numbers unboxed in another, a fixed stride per
// entry; a stream's entry then leaves nothing young behind but the strings that are its own.
// `view()` builds the entry again, the same keys in the same order with the same values (the
// very same strings and frozen objects), so JSON.stringify of it is byte for byte what it was
// (packed-entry.test.ts).
import type { JournalEntry } from './journal.ts';

/** How to rebuild one node: a leaf (the next value), an object (keys in order), an array; `n` = its leaves. */
export type Shape =
  | { readonly k: 0; readonly n: 1 }
  | { readonly k: 1; readonly n: number; readonly keys: readonly string[]; readonly kids: readonly Shape[] }
  | { readonly k: 2; readonly n: number; readonly kids: readonly Shape[] };

const LEAF: Shape = Object.freeze({ k: 0, n: 1 });
// Shapes seen, by signature. Bounded: past the bound (traffic of ever new shapes, e.g. varied
// header sets) entries are simply kept as they are.
const MAX_SHAPES = 512;
const shapes = new Map<string, Shape>();
// The shapes last packed, tried first: checking an entry against a known shape (its compiled
// check) is much cheaper than computing its signature.
const RECENT = 8;
const recent: Shape[] = [];
// Each shape's compiled check (compileFiller), made the first time an entry is checked against it.
const fillers = new WeakMap<Shape, Filler>();
function fillerOf(shape: Shape): Filler {
  let f = fillers.get(shape);
  if (f === undefined) fillers.set(shape, (f = compileFiller(shape)));
  return f;
}
// An entry with more values than this (big metadata, many phases) is kept as it is.
const MAX_VALUES = 256;

/**
 * Where a leaf's value is a number that is not a 32-bit integer, the references hold this marker
 * and the number goes to the numbers array: such a number stored among references would be a
 * heap object of its own (one more survivor per number); in an array of numbers only it is
 * stored unboxed. 32-bit integers stay among the references, where V8 keeps them unboxed too,
 * and come back as the same small integers: read back from the numbers array they would come
 * back as doubles, and a view storing a double where its live entry stored a small integer
 * makes V8 generalize the field of their shared hidden class, which deoptimized the packing
 * check of every later stream after a read of the journal (session-micro-bench.ts: 5.8-6.2 µs
 * per stream before the first read, 7.8-8.4 after).
 */
const isInt32 = (v: number): boolean => (v | 0) === v;
const NUM: object = Object.freeze({ number: true });

/** A plain object or array the journal built (not frozen: frozen ones are shared, kept as values). */
function isTree(x: unknown): x is Record<string, unknown> | unknown[] {
  if (typeof x !== 'object' || x === null || Object.isFrozen(x)) return false;
  if (Array.isArray(x)) return true;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/**
 * Checks that x has one shape and writes its leaves in order: references to refs[base...],
 * numbers to nums[nbase...] (at most nmax of them). Returns how many numbers it wrote, or -1
 * when x is not of the shape (or has more numbers); what it wrote before it found out is left
 * for the caller to overwrite.
 */
type Filler = (x: unknown, refs: unknown[], base: number, nums: number[], nbase: number, nmax: number) => number;

/**
 * Compiles the check of one shape into straight-line code: each object's keys checked in order
 * and its values read by their literal names, so every property load sees one kind of object.
 * The generic walk it replaces (one recursive function for every shape, whose loads saw every
 * kind of object) was the mock's costliest function under the bench; compiled, the session's
 * cost per stream fell from 7.2-7.4 to 6.4-6.9 µs (session-micro-bench.ts; docs/BENCHMARKS.md
 * "Mock EPP cost, 2026-11-30"). Keys are embedded with JSON.stringify, which makes any string
 * a valid string literal; shapes are bounded (MAX_SHAPES), so are the functions.
 */
export function compileFiller(shape: Shape): Filler {
  const lines: string[] = ['let m = 0;'];
  const keyLists: (readonly string[])[] = [];
  let vars = 0;
  let leaf = 0;
  const walk = (s: Shape, x: string): void => {
    if (s.k === 0) {
      const at = `refs[base + ${leaf++}]`;
      lines.push(
        `if (typeof ${x} === 'number' && (${x} | 0) !== ${x}) { if (m === nmax) return -1; nums[nbase + m++] = ${x}; ${at} = NUM; }`,
        `else if (typeof ${x} === 'object' && ${x} !== null && isTree(${x})) return -1;`,
        `else ${at} = ${x};`,
      );
      return;
    }
    lines.push(`if (typeof ${x} !== 'object' || ${x} === null || !isTree(${x})) return -1;`);
    if (s.k === 2) {
      lines.push(`if (!Array.isArray(${x}) || ${x}.length !== ${s.kids.length}) return -1;`);
      s.kids.forEach((kid, j) => {
        const v = `v${vars++}`;
        lines.push(`const ${v} = ${x}[${j}];`);
        walk(kid, v);
      });
      return;
    }
    const keys = `K${keyLists.length}`;
    keyLists.push(s.keys);
    const j = `j${vars++}`;
    lines.push(`if (Array.isArray(${x})) return -1;`, `let ${j} = 0;`, `for (const key in ${x}) if (key !== ${keys}[${j}++]) return -1;`, `if (${j} !== ${s.keys.length}) return -1;`);
    s.keys.forEach((key, i) => {
      const v = `v${vars++}`;
      lines.push(`const ${v} = ${x}[${JSON.stringify(key)}];`);
      walk(s.kids[i] as Shape, v);
    });
  };
  walk(shape, 'x');
  const params = ['isTree', 'NUM', ...keyLists.map((_, i) => `K${i}`)];
  const make = new Function(...params, `return function fillShape(x, refs, base, nums, nbase, nmax) {\n${lines.join('\n')}\nreturn m;\n};`) as (...a: unknown[]) => Filler;
  return make(isTree, NUM, ...keyLists);
}

/** Appends x's leaves to `values` and returns its signature; undefined when over the bound. */
function flatten(x: unknown, values: unknown[]): string | undefined {
  if (!isTree(x)) {
    values.push(x);
    return '_';
  }
  if (values.length > MAX_VALUES) return undefined;
  let sig: string;
  if (Array.isArray(x)) {
    sig = '[';
    for (const v of x) {
      const s = flatten(v, values);
      if (s === undefined) return undefined;
      sig += `${s},`;
    }
    return `${sig}]`;
  }
  sig = '{';
  for (const key in x) {
    const s = flatten(x[key], values);
    if (s === undefined) return undefined;
    // Length-prefixed: any character may be in a key (header names, metadata).
    sig += `${key.length}:${key}=${s},`;
  }
  return `${sig}}`;
}

function shapeOf(x: unknown): Shape {
  if (!isTree(x)) return LEAF;
  if (Array.isArray(x)) {
    const kids = x.map(shapeOf);
    return Object.freeze({ k: 2, n: kids.reduce((a, c) => a + c.n, 0), kids: Object.freeze(kids) });
  }
  const keys = Object.keys(x);
  const kids = keys.map((key) => shapeOf(x[key]));
  return Object.freeze({ k: 1, n: kids.reduce((a, c) => a + c.n, 0), keys: Object.freeze(keys), kids: Object.freeze(kids) });
}

/** Where build reads: the next reference and the next number. */
interface Cursor {
  r: number;
  n: number;
}

function build(s: Shape, refs: readonly unknown[], nums: readonly number[], at: Cursor): unknown {
  if (s.k === 0) {
    const v = refs[at.r++];
    return v === NUM ? nums[at.n++] : v;
  }
  if (s.k === 2) {
    const out: unknown[] = [];
    for (const kid of s.kids) out.push(build(kid, refs, nums, at));
    return out;
  }
  const out: Record<string, unknown> = {};
  for (let j = 0; j < s.keys.length; j++) out[s.keys[j] as string] = build(s.kids[j] as Shape, refs, nums, at);
  return out;
}

/** The known shape an entry has, its leaves written at refs[base...] and nums[nbase...]; undefined when none fits. */
function packInto(e: JournalEntry, refs: unknown[], base: number, nums: number[], nbase: number, maxRefs: number, maxNums: number): Shape | undefined {
  for (let r = 0; r < recent.length; r++) {
    const shape = recent[r] as Shape;
    if (shape.n > maxRefs) continue;
    if (fillerOf(shape)(e, refs, base, nums, nbase, maxNums) >= 0) {
      if (r > 0) {
        recent.splice(r, 1);
        recent.unshift(shape);
      }
      return shape;
    }
  }
  const values: unknown[] = [];
  const sig = flatten(e, values);
  if (sig === undefined || values.length > maxRefs) return undefined;
  let shape = shapes.get(sig);
  if (shape === undefined) {
    if (shapes.size >= MAX_SHAPES) return undefined;
    shape = shapeOf(e);
    shapes.set(sig, shape);
  }
  let m = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v === 'number' && !isInt32(v)) {
      if (m === maxNums) return undefined;
      nums[nbase + m++] = v;
      refs[base + i] = NUM;
    } else refs[base + i] = v;
  }
  recent.unshift(shape);
  if (recent.length > RECENT) recent.pop();
  return shape;
}

/** An entry packed on its own (one with more leaves than a ring slot holds). */
export class PackedEntry {
  readonly id: number;
  readonly #shape: Shape;
  readonly #refs: readonly unknown[];
  readonly #nums: readonly number[];

  constructor(id: number, shape: Shape, refs: readonly unknown[], nums: readonly number[]) {
    this.id = id;
    this.#shape = shape;
    this.#refs = refs;
    this.#nums = nums;
  }

  /** The entry as it was packed: a new object each time. */
  view(): JournalEntry {
    return build(this.#shape, this.#refs, this.#nums, { r: 0, n: 0 }) as JournalEntry;
  }
}

/** The packed form of an ended entry on its own, or undefined to keep it as it is. */
export function packEntry(e: JournalEntry): PackedEntry | undefined {
  const refs: unknown[] = [];
  const nums: number[] = [];
  const shape = packInto(e, refs, 0, nums, 0, MAX_VALUES, MAX_VALUES);
  // Exact-size copies: arrays grown by stores have spare capacity.
  return shape && new PackedEntry(e.id, shape, refs.slice(0, shape.n), nums.slice());
}

/**
 * Ring slots of packed entries: slot i's references at refs[i * refStride...], its numbers at
 * nums[i * numStride...]. Grown slot by slot up to `slots` (a journal of a million entries
 * costs nothing until it fills), then reused: the arrays outlive every stream, so they live in
 * the old generation and a packed entry allocates nothing there.
 */
export class PackedRing {
  /** References a slot holds: the bench's entry has 51 leaves; bigger entries are packed on their own. */
  static readonly REFS = 64;
  /** Numbers other than 32-bit integers a slot holds (the bench's entry has 7). */
  static readonly NUMS = 16;
  readonly slots: number;
  readonly #refs: unknown[] = [];
  readonly #nums: number[] = [];
  readonly #shapes: (Shape | undefined)[] = [];
  /** How many references each slot has written (what a smaller entry packed there later must clear). */
  readonly #used: number[] = [];

  constructor(slots: number) {
    this.slots = slots;
  }

  #grow(slot: number): void {
    while (this.#shapes.length <= slot) {
      this.#shapes.push(undefined);
      this.#used.push(0);
      for (let i = 0; i < PackedRing.REFS; i++) this.#refs.push(undefined);
      // 0.5, not 0: the array's elements are doubles from the start (unboxed, never converted).
      for (let i = 0; i < PackedRing.NUMS; i++) this.#nums.push(0.5);
    }
  }

  /** Packs an ended entry into `slot`; false when it does not fit (the caller keeps it otherwise). */
  pack(slot: number, e: JournalEntry): boolean {
    if (slot >= this.#shapes.length) this.#grow(slot);
    const base = slot * PackedRing.REFS;
    const shape = packInto(e, this.#refs, base, this.#nums, slot * PackedRing.NUMS, PackedRing.REFS, PackedRing.NUMS);
    this.#shapes[slot] = shape;
    // Nothing the slot held before stays referenced past what it holds now.
    const n = shape === undefined ? 0 : shape.n;
    const used = shape === undefined ? PackedRing.REFS : (this.#used[slot] as number);
    if (used > n) this.#refs.fill(undefined, base + n, base + used);
    this.#used[slot] = n;
    return shape !== undefined;
  }

  /** The entry packed in `slot`: a new object each time. */
  view(slot: number): JournalEntry {
    const shape = this.#shapes[slot];
    if (shape === undefined) throw new Error(`journal ring slot ${slot} holds no packed entry`);
    return build(shape, this.#refs, this.#nums, { r: slot * PackedRing.REFS, n: slot * PackedRing.NUMS }) as JournalEntry;
  }

  /** Marks `slot` free (its entry dropped or replaced); its references are overwritten when it is packed again. */
  free(slot: number): void {
    if (slot < this.#shapes.length) this.#shapes[slot] = undefined;
  }
}
