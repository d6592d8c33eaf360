// Generates scenarios/scenario.schema.json (JSON Schema for editors: YAML language servers
// read the `# yaml-language-server: $schema=./scenario.schema.json` line of each scenario)
// from the one zod schema. `node harness/scenarios/generate-schema.ts` rewrites the file;
// test/harness/scenario-schema.test.ts fails when the committed file is out of date.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { mockEppConfigSchema } from '../../mock-epp/mock-epp-config.ts';
import { planeFileSchema } from '../data-planes/plane-file-schema.ts';
import { scenarioSchema } from './scenario-schema.ts';

export const SCHEMA_FILE = fileURLToPath(new URL('../../scenarios/scenario.schema.json', import.meta.url));
/** Plane files (`eppkit run --plane`): `# yaml-language-server: $schema=./plane.schema.json`. */
export const PLANE_SCHEMA_FILE = fileURLToPath(new URL('../../planes/plane.schema.json', import.meta.url));

/** io 'input': what a user writes (sizes as "8MiB", defaults optional). */
function inputSchema(schema: z.ZodType): Record<string, unknown> {
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown>;
}

/** The published file: the draft, its id, title and description first, then the schema. */
function published(schema: Record<string, unknown>, id: string, title: string, description: string): string {
  const out = { $schema: schema.$schema, $id: `https://eppkit.dev/schemas/${id}`, title, description, ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema')) };
  return `${JSON.stringify(out, null, 2)}\n`;
}

export function planeJsonSchema(): string {
  return published(
    inputSchema(planeFileSchema),
    'plane.schema.json',
    'eppkit plane file',
    'A plane file for `eppkit run --plane` / `eppkit bench --plane` (docs/your-data-plane.md). Generated from harness/data-planes/plane-file-schema.ts; do not edit.',
  );
}

export function scenarioJsonSchema(): string {
  const schema = inputSchema(scenarioSchema);
  // The mock EPP parts are free-form in zod (templates are resolved before the mock's own
  // validation); editors get the mock's schema for them.
  const mock = inputSchema(mockEppConfigSchema);
  delete mock.$schema;
  const embed = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(embed);
    if (!v || typeof v !== 'object') return v;
    const o = v as Record<string, unknown>;
    const d = typeof o.description === 'string' ? o.description : '';
    if (o.type === 'object' && (d.startsWith('mock EPP config') || d.startsWith('set-epp:'))) return { ...mock, description: d };
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, embed(x)]));
  };
  Object.assign(schema, embed(schema));
  return published(
    schema,
    'scenario.schema.json',
    'eppkit scenario',
    'A scenario file for `eppkit run` (docs/scenarios.md). Generated from harness/scenarios/scenario-schema.ts; do not edit.',
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(SCHEMA_FILE, scenarioJsonSchema());
  writeFileSync(PLANE_SCHEMA_FILE, planeJsonSchema());
  process.stdout.write(`wrote ${SCHEMA_FILE}\nwrote ${PLANE_SCHEMA_FILE}\n`);
}
