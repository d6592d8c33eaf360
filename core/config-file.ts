// One way to read and validate every input file (mock configs, proxy configs, scenarios):
// YAML or JSON, validated against one zod schema, ALL problems reported at once with their
// path and, for YAML/JSON files, their line. The result is deeply frozen.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';
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

/** Validates `data`; throws one EppkitError listing every problem. */
export function validate<S extends z.ZodType>(
  schema: S,
  data: unknown,
  source: string,
  opts: { code?: ErrorCode; lineOf?: (path: ReadonlyArray<PropertyKey>) => number | undefined } = {},
): z.output<S> {
  const r = schema.safeParse(data);
  if (r.success) return deepFreeze(r.data);
  const problems: Problem[] = r.error.issues.map((i) => {
    const p: Problem = { path: formatPath(i.path), message: i.message };
    const line = opts.lineOf?.(i.path);
    if (line !== undefined) p.line = line;
    return p;
  });
  throw new EppkitError(opts.code ?? 'EPPKIT_CONFIG_INVALID', { source }, problems);
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
        last = (pair.value as YamlNode | null) ?? (pair.key as YamlNode);
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
