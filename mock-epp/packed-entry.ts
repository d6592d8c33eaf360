// An ended journal entry in a compact form: its leaf values in one flat array, and the shape
// of the tree they came from (keys in their order, arrays' lengths) shared by every entry of
// that shape. The journal holds 10,000 entries (2 s of streams at 5,000/s), so each one
// outlives two young-generation GCs and is copied twice: as a tree of ~25 objects it held
// 1,286 bytes of heap, packed 655 (heap snapshots of 10,000 bench streams; docs/BENCHMARKS.md
// "Mock EPP cost, 2026-11-30"). `view()` builds the entry again, the same keys in the same
// order with the same values (the very same strings and frozen objects), so JSON.stringify of
// it is byte for byte what it was (packed-entry.test.ts).
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

/** A plain object or array the journal built (not frozen: frozen ones are shared, kept as values). */
function isTree(x: unknown): x is Record<string, unknown> | unknown[] {
  if (typeof x !== 'object' || x === null || Object.isFrozen(x)) return false;
  if (Array.isArray(x)) return true;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/** Whether x has one shape, its leaves then written into out in order (compiled per shape). */
type Filler = (x: unknown, out: unknown[]) => boolean;

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
  const lines: string[] = [];
  const keyLists: (readonly string[])[] = [];
  let vars = 0;
  let leaf = 0;
  const walk = (s: Shape, x: string): void => {
    if (s.k === 0) {
      lines.push(`if (typeof ${x} === 'object' && ${x} !== null && isTree(${x})) return false;`, `out[${leaf++}] = ${x};`);
      return;
    }
    lines.push(`if (typeof ${x} !== 'object' || ${x} === null || !isTree(${x})) return false;`);
    if (s.k === 2) {
      lines.push(`if (!Array.isArray(${x}) || ${x}.length !== ${s.kids.length}) return false;`);
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
    lines.push(`if (Array.isArray(${x})) return false;`, `let ${j} = 0;`, `for (const key in ${x}) if (key !== ${keys}[${j}++]) return false;`, `if (${j} !== ${s.keys.length}) return false;`);
    s.keys.forEach((key, i) => {
      const v = `v${vars++}`;
      lines.push(`const ${v} = ${x}[${JSON.stringify(key)}];`);
      walk(s.kids[i] as Shape, v);
    });
  };
  walk(shape, 'x');
  const params = ['isTree', ...keyLists.map((_, i) => `K${i}`)];
  const make = new Function(...params, `return function fillShape(x, out) {\n${lines.join('\n')}\nreturn true;\n};`) as (...a: unknown[]) => Filler;
  return make(isTree, ...keyLists);
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

function build(s: Shape, values: readonly unknown[], at: { i: number }): unknown {
  if (s.k === 0) return values[at.i++];
  if (s.k === 2) {
    const out: unknown[] = [];
    for (const kid of s.kids) out.push(build(kid, values, at));
    return out;
  }
  const out: Record<string, unknown> = {};
  for (let j = 0; j < s.keys.length; j++) out[s.keys[j] as string] = build(s.kids[j] as Shape, values, at);
  return out;
}

export class PackedEntry {
  readonly id: number;
  readonly #shape: Shape;
  readonly #values: readonly unknown[];

  constructor(id: number, shape: Shape, values: readonly unknown[]) {
    this.id = id;
    this.#shape = shape;
    this.#values = values;
  }

  /** The entry as it was packed: a new object each time. */
  view(): JournalEntry {
    return build(this.#shape, this.#values, { i: 0 }) as JournalEntry;
  }
}

/** The packed form of an ended entry, or undefined to keep it as it is. */
export function packEntry(e: JournalEntry): PackedEntry | undefined {
  for (let r = 0; r < recent.length; r++) {
    const shape = recent[r] as Shape;
    const values = new Array<unknown>(shape.n);
    if (fillerOf(shape)(e, values)) {
      if (r > 0) {
        recent.splice(r, 1);
        recent.unshift(shape);
      }
      return new PackedEntry(e.id, shape, values);
    }
  }
  const values: unknown[] = [];
  const sig = flatten(e, values);
  if (sig === undefined) return undefined;
  let shape = shapes.get(sig);
  if (shape === undefined) {
    if (shapes.size >= MAX_SHAPES) return undefined;
    shape = shapeOf(e);
    shapes.set(sig, shape);
  }
  recent.unshift(shape);
  if (recent.length > RECENT) recent.pop();
  // An exact-size copy: the array grown by push has spare capacity.
  return new PackedEntry(e.id, shape, values.slice());
}
