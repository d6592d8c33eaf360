// One way to read and validate every input file (mock configs, proxy configs, scenarios):
// YAML or JSON, validated against one zod schema, ALL problems reported at once with their
// path and, for YAML/JSON files, their line. The result is deeply frozen.
// zod's issues are turned into what a user can act on: an unknown key at its own path and line
// with the closest known key, an invalid enum value with the valid ones, and a union (a step
// is a request, an action, ...) reported by the member the input was meant to be, not as
// zod's bare "Invalid input".
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { didYouMean } from './did-you-mean.ts';
import { EppkitError, type ErrorCode, type Problem } from './errors.ts';

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  }
  return out;
}

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

type LineOf = (path: ReadonlyArray<PropertyKey>) => number | undefined;

/** A zod issue as finalized with PARSE_PARAMS: the input (when there is one) and, for unknown keys, the known ones. */
type Issue = z.core.$ZodIssue & { input?: unknown; known?: readonly string[] };

const quote = (v: unknown): string => (typeof v === 'string' ? `"${v}"` : JSON.stringify(v) ?? String(v));

// zod calls this for every issue without a message of its own schema (a schema's own message
// wins); it also records the known keys of an object with unknown ones, for "did you mean".
const errorMap: z.core.$ZodErrorMap = (iss) => {
  if (iss.code === 'unrecognized_keys') {
    const shape = (iss.inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod?.def?.shape;
    if (shape) (iss as { known?: string[] }).known = Object.keys(shape);
    return undefined;
  }
  if (iss.code === 'too_big' || iss.code === 'too_small') {
    const big = iss.code === 'too_big';
    const limit = String(big ? iss.maximum : iss.minimum);
    const inclusive = iss.inclusive !== false;
    const what = iss.origin === 'array' || iss.origin === 'set' ? ' items' : iss.origin === 'string' ? ' characters' : '';
    if (what) return `needs ${big ? 'at most' : 'at least'} ${limit}${what}`;
    if (iss.origin === 'number' || iss.origin === 'int' || iss.origin === 'bigint')
      return `must be ${big ? (inclusive ? 'at most' : 'less than') : inclusive ? 'at least' : 'greater than'} ${limit}`;
    return undefined;
  }
  if (iss.code === 'invalid_value') {
    return iss.values.length === 1 ? `must be ${quote(iss.values[0])}` : `must be one of: ${iss.values.map(quote).join(', ')}`;
  }
  return undefined;
};
const PARSE_PARAMS = { reportInput: true, error: errorMap } as const;

/** A value's type in the words of a YAML file. */
function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a map' : typeof v === 'string' ? `the string ${quote(v)}` : `${typeof v} ${String(v)}`;
}

/** zod's expected type in the words of a YAML file. */
function expectedName(t: string): string {
  const names: Record<string, string> = { object: 'a map', record: 'a map', array: 'a list', string: 'a string', number: 'a number', int: 'an integer', boolean: 'true or false', nonoptional: 'a value', tuple: 'a list' };
  return names[t] ?? t;
}

const absent = (i: Issue): boolean => i.input === undefined;

/** What a union member expected when the input is not even of its type (else undefined). */
function mismatchOf(issues: readonly Issue[]): string[] | undefined {
  if (issues.length !== 1) return undefined;
  const i = issues[0] as Issue;
  if (i.path.length !== 0) return undefined;
  if (i.code === 'invalid_type') return [expectedName(i.expected)];
  if (i.code === 'invalid_value' && i.values.length === 1) return [quote(i.values[0])];
  if (i.code === 'invalid_union' && i.errors.length > 0) {
    const all = i.errors.map(mismatchOf);
    return all.every((x) => x !== undefined) ? [...new Set(all.flat() as string[])] : undefined;
  }
  return undefined;
}

const isUnknownKeys = (i: Issue): i is Issue & { code: 'unrecognized_keys' } => i.code === 'unrecognized_keys' && i.path.length === 0;
const isMissingKey = (i: Issue): boolean => (i.code === 'invalid_type' || i.code === 'invalid_value') && i.path.length === 1 && absent(i);

/** How far the input is from a union member: the member it was meant to be scores lowest. */
function distance(issues: readonly Issue[]): number {
  if (mismatchOf(issues)) return 1000;
  let d = 0;
  for (const i of issues) d += isUnknownKeys(i) ? 10 * i.keys.length : isMissingKey(i) ? 10 : 1;
  return d;
}

/** Unknown keys that look like a typo of a key this member knows: the tie-break between members. */
function typos(issues: readonly Issue[]): number {
  let n = 0;
  for (const i of issues) if (isUnknownKeys(i)) for (const k of i.keys) if (didYouMean(k, i.known ?? [])) n++;
  return n;
}

interface Found {
  path: PropertyKey[];
  message: string;
  /** A required key that is absent. */
  missing?: boolean;
  /** Unknown key: the known key it is probably a typo of. */
  typoOf?: string;
  /** Unknown key whose message lists the known keys (once per map is enough). */
  knownListed?: boolean;
}

function unknownKey(key: string, known: readonly string[], path: PropertyKey[]): Found {
  const guess = didYouMean(key, known);
  const message = guess ? `unknown key "${key}" (did you mean "${guess}"?)` : known.length > 0 ? `unknown key "${key}"; known keys: ${known.join(', ')}` : `unknown key "${key}"`;
  return { path: [...path, key], message, ...(guess ? { typoOf: guess } : {}), ...(!guess && known.length > 0 ? { knownListed: true } : {}) };
}

/** A union none of whose members fits: report it as the member the input was meant to be. */
function explainUnion(i: Issue & { code: 'invalid_union' }, path: PropertyKey[], out: Found[]): void {
  if (i.errors.length === 0) {
    // A discriminated union whose tag names no member.
    const d = i as Issue & { discriminator?: string; options?: unknown[] };
    if (d.discriminator && d.options) {
      const got = (i.input as Record<string, unknown> | undefined)?.[d.discriminator];
      const guess = typeof got === 'string' ? didYouMean(got, d.options.filter((o): o is string => typeof o === 'string')) : undefined;
      const head = got === undefined ? 'required' : `${quote(got)} is not one of`;
      out.push({ path, message: `${head}: ${d.options.map(quote).join(', ')}${guess ? ` (did you mean "${guess}"?)` : ''}` });
    } else out.push({ path, message: i.message });
    return;
  }
  const expected = mismatchOf([{ ...i, path: [] }]);
  if (expected) {
    out.push(absent(i) ? { path, message: `required (${expected.join(' or ')})`, missing: true } : { path, message: `must be ${expected.join(' or ')}, not ${typeName(i.input)}` });
    return;
  }
  const branches = i.errors as Issue[][];
  const best = Math.min(...branches.map(distance));
  const closest = branches.filter((b) => distance(b) === best);
  const mostTypos = Math.max(...closest.map(typos));
  const chosen = closest.filter((b) => typos(b) === mostTypos);
  // Several members fit equally badly, and only by which keys are there (`{hello: 1}` as a
  // step): say which keys make each member, and check unknown keys against all of them.
  const structural = chosen.every((b) => b.every((x) => isUnknownKeys(x) || isMissingKey(x)));
  if (chosen.length > 1 && structural) {
    const known = [...new Set(chosen.flatMap((b) => b.flatMap((x) => (isUnknownKeys(x) ? (x.known ?? []) : []))))];
    const unknown = chosen.map((b) => new Set(b.flatMap((x) => (isUnknownKeys(x) ? x.keys : []))));
    const notKnownByAny = [...(unknown[0] ?? [])].filter((k) => unknown.every((u) => u.has(k)));
    for (const k of notKnownByAny) out.push(unknownKey(k, known, path));
    const needs = chosen.map((b) => b.filter(isMissingKey).map((x) => String(x.path[0])).join(' + ')).filter(Boolean);
    if (needs.length > 0) out.push({ path, message: `needs one of: ${needs.join(', ')}`, missing: true });
    return;
  }
  explain(chosen[0] as Issue[], path, out);
}

function explain(issues: readonly Issue[], base: readonly PropertyKey[], out: Found[]): void {
  for (const i of issues) {
    const path = [...base, ...(i.path as PropertyKey[])];
    switch (i.code) {
      case 'unrecognized_keys':
        for (const key of i.keys) out.push(unknownKey(key, i.known ?? [], path));
        break;
      case 'invalid_union':
        explainUnion(i, path, out);
        break;
      case 'invalid_type':
        if (absent(i)) out.push({ path, message: `required (${expectedName(i.expected)})`, missing: true });
        else out.push({ path, message: i.message.startsWith('Invalid input: expected') ? `must be ${expectedName(i.expected)}, not ${typeName(i.input)}` : i.message });
        break;
      case 'invalid_value': {
        const guess = typeof i.input === 'string' ? didYouMean(i.input, i.values.filter((v): v is string => typeof v === 'string')) : undefined;
        // Our own message ("must be one of: ...") reads as `"x" is not one of: ...`; a schema's own message stays as written.
        const own = i.message.replace(/^must be one of: /, 'is not one of: ');
        if (absent(i)) {
          out.push({ path, message: `required: ${i.message.replace(/^must be /, '')}`, missing: true });
          break;
        }
        const got = own !== i.message ? `${quote(i.input)} ` : '';
        out.push({ path, message: `${got}${own}${guess ? ` (did you mean "${guess}"?)` : ''}` });
        break;
      }
      default:
        out.push({ path, message: i.message });
    }
  }
}

/** Every problem in zod's issues, at its own path (prefixed with `at`) and line. */
export function issuesToProblems(issues: readonly z.core.$ZodIssue[], opts: { lineOf?: LineOf | undefined; at?: readonly PropertyKey[] } = {}): Problem[] {
  const found: Found[] = [];
  explain(issues as Issue[], opts.at ?? [], found);
  // `fil: x` where `file` is required: the typo says it all, "file: required" would be noise.
  const typoed = new Set(found.filter((f) => f.typoOf).map((f) => formatPath([...f.path.slice(0, -1), f.typoOf as string])));
  const kept = found.filter((f) => !(f.missing && typoed.has(formatPath(f.path))));
  const problems = kept.map((f) => {
    const p: Problem = { path: formatPath(f.path), message: f.message };
    const line = opts.lineOf?.(f.path);
    if (line !== undefined) p.line = line;
    return p;
  });
  // The known keys of one map once, at its first unknown key (in the file's order).
  const listedFor = new Map(kept.flatMap((f, i) => (f.knownListed ? [[problems[i] as Problem, formatPath(f.path.slice(0, -1))] as const] : [])));
  const listed = new Set<string>();
  return sortByLine(problems).map((p) => {
    const parent = listedFor.get(p);
    if (parent === undefined) return p;
    if (!listed.has(parent)) {
      listed.add(parent);
      return p;
    }
    return { ...p, message: p.message.replace(/; known keys: .*$/, ' (known keys as above)') };
  });
}

/** Problems in the order of the file (stable; those without a line keep their order, last). */
export function sortByLine(problems: readonly Problem[]): Problem[] {
  return problems
    .map((p, i) => [p, i] as const)
    .sort(([a, i], [b, j]) => (a.line ?? Infinity) - (b.line ?? Infinity) || i - j)
    .map(([p]) => p);
}

/** Parses `data` with `schema`: the value, or every problem (at `at` inside the file, with lines). */
export function checkSchema<S extends z.ZodType>(
  schema: S,
  data: unknown,
  opts: { lineOf?: LineOf | undefined; at?: readonly PropertyKey[] } = {},
): { success: true; data: z.output<S> } | { success: false; problems: Problem[] } {
  const r = schema.safeParse(data, PARSE_PARAMS);
  return r.success ? { success: true, data: r.data } : { success: false, problems: issuesToProblems(r.error.issues, opts) };
}

/** Validates `data`; throws one EppkitError listing every problem. */
export function validate<S extends z.ZodType>(
  schema: S,
  data: unknown,
  source: string,
  opts: { code?: ErrorCode; lineOf?: LineOf } = {},
): z.output<S> {
  const r = checkSchema(schema, data, { lineOf: opts.lineOf });
  if (r.success) return deepFreeze(r.data);
  throw new EppkitError(opts.code ?? 'EPPKIT_CONFIG_INVALID', { source }, r.problems);
}

export interface ParsedFile {
  data: unknown;
  lineOf: (path: ReadonlyArray<PropertyKey>) => number | undefined;
}

/** Parses YAML (a superset of JSON) keeping positions, so problems can name their line. */
export function parseText(text: string, source: string, code: ErrorCode = 'EPPKIT_CONFIG_INVALID'): ParsedFile {
  const lineCounter = new LineCounter();
  // prettyErrors is what fills in linePos, so syntax errors can name their line.
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const p: Problem = { path: '', message: (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '') };
      const line = e.linePos?.[0]?.line;
      if (line !== undefined) p.line = line;
      return p;
    });
    throw new EppkitError(code, { source }, problems);
  }
  const lineOf = (path: ReadonlyArray<PropertyKey>): number | undefined => {
    let node: unknown = doc.contents;
    let last: YamlNode | undefined = isScalar(node) || isMap(node) || isSeq(node) ? (node as YamlNode) : undefined;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) break;
        node = pair.value;
        // The key's own line: where a user looks for `key:` (a block value starts below it).
        last = (pair.key as YamlNode | null) ?? (pair.value as YamlNode);
      } else if (isSeq(node) && typeof seg === 'number') {
        node = node.items[seg];
        if (!node) break;
        last = node as YamlNode;
      } else break;
    }
    const offset = last?.range?.[0];
    return offset === undefined ? undefined : lineCounter.linePos(offset).line;
  };
  return { data: doc.toJS({ maxAliasCount: 100 }), lineOf };
}

export function readTextFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new EppkitError('EPPKIT_CONFIG_UNREADABLE', { source: file, reason: (e as NodeJS.ErrnoException).code ?? String(e) });
  }
}

/** Reads, parses and validates a YAML or JSON file; the returned value is frozen. */
export function loadConfigFile<S extends z.ZodType>(schema: S, file: string, code: ErrorCode = 'EPPKIT_CONFIG_INVALID'): z.output<S> {
  const { data, lineOf } = parseText(readTextFile(file), file, code);
  return validate(schema, data, file, { code, lineOf });
}
