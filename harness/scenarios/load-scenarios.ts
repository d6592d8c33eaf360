// Finds scenario files (files or folders, recursively *.yaml / *.yml / *.json except the
// schema), parses and validates each against the one scenario schema, and also validates the
// mock EPP configuration it carries against the mock's own schema. Every problem of a file is
// reported at once, with its line and path (EPPKIT_SCENARIO_INVALID, exit 2), and every bad
// file of a run at once.
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { checkSchema, formatPath, sortByLine, parseText, readTextFile, deepFreeze } from '../../core/config-file.ts';
import { didYouMean } from '../../core/did-you-mean.ts';
import { EppkitError, combineErrors, type Problem } from '../../core/errors.ts';
import { mockEppConfigSchema } from '../../mock-epp/mock-epp-config.ts';
import { scenarioSchema, type Scenario } from './scenario-schema.ts';
import { placeholderTemplate } from './templates.ts';

export interface LoadedScenario {
  scenario: Scenario;
  /** Path as given/found (for messages). */
  file: string;
  /** Absolute folder, for body files. */
  dir: string;
}

export const DEFAULT_SCENARIO_DIR = new URL('../../scenarios/', import.meta.url).pathname;

function isScenarioFile(name: string): boolean {
  return /\.(ya?ml|json)$/.test(name) && !name.endsWith('.schema.json');
}

/** Scenario files under the given paths, sorted, each once. */
export function findScenarioFiles(paths: readonly string[]): string[] {
  const out = new Set<string>();
  const walk = (p: string, explicit: boolean): void => {
    let st;
    try {
      st = statSync(p);
    } catch (e) {
      throw new EppkitError('EPPKIT_CONFIG_UNREADABLE', { source: p, reason: (e as NodeJS.ErrnoException).code ?? String(e) });
    }
    if (st.isDirectory()) {
      for (const name of readdirSync(p).sort()) {
        const child = join(p, name);
        if (statSync(child).isDirectory()) walk(child, false);
        else if (isScenarioFile(name)) out.add(child);
      }
    } else if (explicit || isScenarioFile(p)) out.add(p);
  };
  for (const p of paths) walk(p, true);
  return [...out];
}

/** Parses and validates one scenario file's text: every problem at once (schema, mock EPP configs, templates). */
export function parseScenario(text: string, file: string): Scenario {
  const { data, lineOf } = parseText(text, file, 'EPPKIT_SCENARIO_INVALID');
  const r = checkSchema(scenarioSchema, data, { lineOf });
  const problems: Problem[] = r.success ? [] : [...r.problems];
  const problem = (path: ReadonlyArray<PropertyKey>, message: string): void => {
    const p: Problem = { path: formatPath(path), message };
    const line = lineOf(path);
    if (line !== undefined) p.line = line;
    problems.push(p);
  };
  // The mock EPP configs and the templates are checked on the file as written, so a schema
  // problem elsewhere does not hide theirs: the user sees every problem in one go.
  const raw = (data ?? {}) as { setup?: { backends?: unknown; epp?: unknown; pools?: unknown }; steps?: unknown };
  const backends = Array.isArray(raw.setup?.backends) ? (raw.setup.backends as unknown[]) : [];
  const names = backends.map((b) => (b && typeof b === 'object' ? (b as { name?: unknown }).name : undefined)).filter((n): n is string => typeof n === 'string');
  const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
  // The mock EPP part is validated by the mock's own schema, templates replaced by placeholders.
  const checkEpp = (cfg: unknown, at: PropertyKey[]): void => {
    if (!isObject(cfg)) return;
    const m = checkSchema(mockEppConfigSchema, placeholderTemplate(cfg, names), { lineOf, at });
    if (!m.success) problems.push(...m.problems);
  };
  // Every {{template}} must name a backend (or epp).
  const walk = (v: unknown, at: PropertyKey[]): void => {
    if (typeof v === 'string') {
      for (const m of v.matchAll(/\{\{\s*([a-z0-9-]+)(?:\.(ip|port))?\s*\}\}/g))
        if (m[1] !== 'epp' && !names.includes(m[1] ?? '')) problem(at, `template ${m[0]} names no backend (known: ${names.join(', ')})${didYouMeanSuffix(m[1] ?? '', names)}`);
    } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...at, i]));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...at, k]);
  };
  walk(data, []);
  checkEpp(raw.setup?.epp, ['setup', 'epp']);
  if (Array.isArray(raw.setup?.pools)) raw.setup.pools.forEach((p, i) => checkEpp(isObject(p) ? p.epp : undefined, ['setup', 'pools', i, 'epp']));
  if (Array.isArray(raw.steps)) raw.steps.forEach((st, i) => {
    if (isObject(st) && 'action' in st) checkEpp(st.epp, ['steps', i, 'epp']);
  });
  if (problems.length > 0 || !r.success) throw new EppkitError('EPPKIT_SCENARIO_INVALID', { source: file }, sortByLine(problems));
  return deepFreeze(r.data);
}

function didYouMeanSuffix(word: string, known: readonly string[]): string {
  // {{timeout}} is most likely the EPP timeout, not a backend.
  const guess = didYouMean(word, [...known, 'epp', 'timeoutMs']);
  return guess ? `; did you mean {{${guess}}}?` : '';
}

/**
 * Loads every scenario under `paths` (default: the built-in suite); duplicate names are an
 * error. Every bad file is reported at once (one error, each problem with its file).
 */
export function loadScenarios(paths: readonly string[]): LoadedScenario[] {
  const files = findScenarioFiles(paths.length > 0 ? paths : [DEFAULT_SCENARIO_DIR]);
  const loaded: LoadedScenario[] = [];
  const errors: EppkitError[] = [];
  const seen = new Map<string, string>();
  for (const f of files) {
    const display = relative(process.cwd(), f).startsWith('..') ? f : relative(process.cwd(), f) || f;
    let scenario: Scenario;
    try {
      scenario = parseScenario(readTextFile(f), display);
    } catch (e) {
      if (e instanceof EppkitError) {
        errors.push(e);
        continue;
      }
      throw e;
    }
    const prev = seen.get(scenario.name);
    if (prev) {
      errors.push(new EppkitError('EPPKIT_SCENARIO_INVALID', { source: display }, [{ path: 'name', message: `scenario name "${scenario.name}" is also used by ${prev}` }]));
      continue;
    }
    seen.set(scenario.name, display);
    loaded.push({ scenario, file: display, dir: resolve(f, '..') });
  }
  if (errors.length > 0) throw combineErrors(errors);
  return loaded;
}
