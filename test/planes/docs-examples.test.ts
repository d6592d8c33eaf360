// docs/your-data-plane.md shows the worked plane files exactly as they are in planes/ (which
// the other tests run), and its table of template variables is exactly PLANE_VARIABLES.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ENTRY_VARIABLES, LISTENER_VARIABLES, PLANE_VARIABLES, RULE_VARIABLES } from '../../harness/data-planes/plane-templates.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const DOC = readFileSync(`${ROOT}docs/your-data-plane.md`, 'utf8');

describe('docs/your-data-plane.md', () => {
  it('embeds every worked plane file and template verbatim', () => {
    const blocks = [...DOC.matchAll(/<!-- file: (\S+) -->\n```\w*\n([\s\S]*?)\n```/g)];
    expect(blocks.map((b) => b[1])).toEqual(['planes/nginx-module.plane.yaml', 'planes/nginx-module.conf.tpl', 'planes/envoy.plane.yaml', 'planes/envoy.yaml.tpl', 'planes/running.plane.yaml']);
    for (const [, file, text] of blocks) expect(text, `${file} (regenerate the doc's copy)`).toBe(readFileSync(`${ROOT}${file}`, 'utf8').replace(/\n$/, ''));
  });

  it('documents exactly the template variables there are', () => {
    const rows = (from: string, to: string): string[] => {
      const table = DOC.slice(DOC.indexOf('| variable | value |', DOC.indexOf(from)), DOC.indexOf(to, DOC.indexOf(from)));
      return [...table.matchAll(/^\| (`\{\{[^|]+\}\}`(?: \/ `\{\{[^|]+\}\}`)*) \| /gm)].map((m) => (m[1] ?? '').replace(/`\{\{|\}\}`/g, ''));
    };
    expect(rows('## Templates and their variables', '### Several routes')).toEqual(PLANE_VARIABLES.map(([n]) => n));
    expect(rows('Each item of `{{#listeners}}`', 'Each item of a listener')).toEqual(LISTENER_VARIABLES.map(([n]) => n));
    expect(rows('Each item of a listener', 'Each item of `{{#entries}}`')).toEqual(RULE_VARIABLES.map(([n]) => n));
    expect(rows('Each item of `{{#entries}}`', '## The plane file')).toEqual(ENTRY_VARIABLES.map(([n]) => n));
  });
});
