// Finds scenario files (files or folders, recursively *.yaml / *.yml / *.json except the
// schema), parses and validates each against the one scenario schema, and also validates the
// mock EPP configuration it carries against the mock's own schema. Every problem of a file is
// reported at once, with its line and path (EPPKIT_SCENARIO_INVALID, exit 2).
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { formatPath, parseText, readTextFile, deepFreeze } from '../../core/config-file.ts';
import { EppkitError, type Problem } from '../../core/errors.ts';
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

/** Parses and validates one scenario file's text. */
export function parseScenario(text: string, file: string): Scenario {
  const { data, lineOf } = parseText(text, file, 'EPPKIT_SCENARIO_INVALID');
  const r = scenarioSchema.safeParse(data);
  const problems: Problem[] = [];
  const problem = (path: ReadonlyArray<PropertyKey>, message: string): void => {
    const p: Problem = { path: formatPath(path), message };
    const line = lineOf(path);
    if (line !== undefined) p.line = line;
    problems.push(p);
  };
  if (!r.success) {
    for (const i of r.error.issues) problem(i.path, i.message);
    throw new EppkitError('EPPKIT_SCENARIO_INVALID', { source: file }, problems);
  }
  const s = r.data;
  // The mock EPP part is validated by the mock's own schema, templates replaced by placeholders.
  const names = s.setup.backends.map((b) => b.name);
  const checkEpp = (cfg: Record<string, unknown>, at: PropertyKey[]): void => {
    const probe = placeholderTemplate(cfg, names);
    const m = mockEppConfigSchema.safeParse(probe);
    if (!m.success) for (const i of m.error.issues) problem([...at, ...i.path], i.message);
  };
  // Every {{template}} must name a backend (or epp).
  const walk = (v: unknown, at: PropertyKey[]): void => {
    if (typeof v === 'string') {
      for (const m of v.matchAll(/\{\{\s*([a-z0-9-]+)(?:\.(ip|port))?\s*\}\}/g))
        if (m[1] !== 'epp' && !names.includes(m[1] ?? '')) problem(at, `template ${m[0]} names no backend (known: ${names.join(', ')})`);
    } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...at, i]));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...at, k]);
  };
  walk(data, []);
  checkEpp(s.setup.epp, ['setup', 'epp']);
  s.steps.forEach((st, i) => {
    if ('action' in st && st.epp) checkEpp(st.epp, ['steps', i, 'epp']);
  });
  if (problems.length > 0) throw new EppkitError('EPPKIT_SCENARIO_INVALID', { source: file }, problems);
  return deepFreeze(s);
}

/** Loads every scenario under `paths` (default: the built-in suite); duplicate names are an error. */
export function loadScenarios(paths: readonly string[]): LoadedScenario[] {
  const files = findScenarioFiles(paths.length > 0 ? paths : [DEFAULT_SCENARIO_DIR]);
  const loaded: LoadedScenario[] = [];
  const seen = new Map<string, string>();
  for (const f of files) {
    const display = relative(process.cwd(), f).startsWith('..') ? f : relative(process.cwd(), f) || f;
    const scenario = parseScenario(readTextFile(f), display);
    const prev = seen.get(scenario.name);
    if (prev) {
      throw new EppkitError('EPPKIT_SCENARIO_INVALID', { source: display }, [{ path: 'name', message: `scenario name "${scenario.name}" is also used by ${prev}` }]);
    }
    seen.set(scenario.name, display);
    loaded.push({ scenario, file: display, dir: resolve(f, '..') });
  }
  return loaded;
}
