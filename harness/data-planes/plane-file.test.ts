// Plane files are checked once, all problems at once (schema and templates together), with
// file, line and key: unknown features, unknown template variables (in the template file, with its line), unbalanced
// sections, start and url together. Templates render lists, flags and inverted sections.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isEppkitError, type EppkitError } from '../../core/errors.ts';
import { routeWithDefaults } from '../../core/route-model.ts';
import { PLANE_SCHEMA_FILE, planeJsonSchema } from '../scenarios/generate-schema.ts';
import { loadPlaneFile } from './plane-file-driver.ts';
import { parseTemplate, planeVariables, renderTemplate } from './plane-templates.ts';

function refused(file: string): EppkitError {
  try {
    loadPlaneFile(file);
  } catch (e) {
    if (isEppkitError(e)) return e;
    throw e;
  }
  throw new Error('expected the plane file to be refused');
}

describe('plane files', () => {
  it('planes/plane.schema.json is up to date (node harness/scenarios/generate-schema.ts)', () => {
    expect(readFileSync(PLANE_SCHEMA_FILE, 'utf8')).toBe(planeJsonSchema());
  });

  it('refuses unknown features, unknown template variables (naming the template and its line), and start with url, all at once, exit 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-plane-'));
    writeFileSync(join(dir, 'conf.tpl'), 'listen {{listen}};\nepp {{epp.hots}};\n{{#pool}}server {{.}};{{/pool}}\n');
    writeFileSync(join(dir, 'p.yaml'), 'name: p\nfeatures: [body-buffered, teleport]\nstart:\n  command: ["x", "{{dirr}}"]\n  templates:\n    - { from: conf.tpl, to: c.conf }\n');
    let e = refused(join(dir, 'p.yaml'));
    expect(e.code).toBe('EPPKIT_PLANE_INVALID');
    expect(e.exitCode).toBe(2);
    expect(e.format()).toContain(join(dir, 'p.yaml'));
    const feature = e.problems.find((p) => p.path === 'features[1]');
    expect(feature?.line).toBe(2);
    expect(feature?.message).toMatch(/unknown feature; known: body-none/);
    // A schema problem does not hide the template problems: they come in the same error.
    expect(e.problems.find((p) => p.path === 'start.command[1]')?.message).toContain('{{dirr}} is not a variable');
    expect(e.problems.find((p) => p.path === 'start.templates[0].from')?.message).toContain('{{epp.hots}} is not a variable');
    expect(e.problems.map((p) => p.line)).toEqual([...e.problems.map((p) => p.line)].sort((a, b) => (a ?? 0) - (b ?? 0)));
    writeFileSync(join(dir, 'p.yaml'), 'name: p\nfeatures: [body-buffered]\nstart:\n  command: ["x", "{{dirr}}"]\n  templates:\n    - { from: conf.tpl, to: c.conf }\n    - { from: missing.tpl, to: m.conf }\n');
    e = refused(join(dir, 'p.yaml'));
    const byPath = new Map(e.problems.map((p) => [p.path, p]));
    expect(byPath.get('start.command[1]')?.message).toContain('{{dirr}} is not a variable');
    expect(byPath.get('start.templates[0].from')?.message).toBe('conf.tpl line 2: {{epp.hots}} is not a variable (see the table in docs/your-data-plane.md)');
    expect(byPath.get('start.templates[0].from')?.line).toBe(6);
    expect(byPath.get('start.templates[1].from')?.message).toMatch(/cannot read .*missing\.tpl \(ENOENT\)/);
    writeFileSync(join(dir, 'both.yaml'), 'name: p\nfeatures: [body-buffered]\nurl: http://127.0.0.1:1\nstart: { command: x }\n');
    expect(refused(join(dir, 'both.yaml')).problems.map((p) => p.message)).toContain('needs exactly one of start (eppkit starts it per scenario) or url (it already runs)');
    writeFileSync(join(dir, 'url.yaml'), 'name: p\nfeatures: [body-buffered]\nurl: http://127.0.0.1:1\nsettings: { bodyMode: none }\n');
    const u = new Map(refused(join(dir, 'url.yaml')).problems.map((p) => [p.path, p.message]));
    expect(u.get('eppPort')).toContain('needs eppPort');
    expect(u.get('settings.bodyMode')).toContain('features must list body-none');
  });

  it('finds unbalanced sections and item references outside a list', () => {
    expect(parseTemplate('{{#pool}}x').problems[0]?.message).toContain('never closed');
    expect(parseTemplate('{{#pool}}x{{/allow}}').problems[0]?.message).toContain('closes {{#pool}}');
    expect(parseTemplate('{{.host}}').problems[0]?.message).toContain('inside a {{#list}}');
    expect(parseTemplate('{{env.HOME}} {{tools.nginx}}').problems).toEqual([]);
  });

  it('renders the route: lists, flags, inverted sections, derived values', () => {
    const route = routeWithDefaults({ eppAddress: '127.0.0.1:9002', failureMode: 'open', timeoutMs: 1500, bodyMode: 'streamed', fallbackEndpoints: ['127.0.0.2:1', '[::1]:2'] });
    const vars = planeVariables(route, '/w', { host: '127.0.0.1', port: 8080 }, { nginx: 'n', nginxModule: 'm', envoy: 'e' });
    const tpl = 'listen {{listen}}; epp {{epp.host}} {{epp.port}} {{timeoutSeconds}}s {{envoy.bodyMode}}/{{envoy.trailerMode}}\n{{#failOpen}}{{#pool}}server {{.host}} {{.port}};\n{{/pool}}{{/failOpen}}{{^allow.any}}no allowlist{{/allow.any}} pool={{pool}}';
    expect(renderTemplate(tpl, vars)).toBe('listen 127.0.0.1:8080; epp 127.0.0.1 9002 1.5s FULL_DUPLEX_STREAMED/SEND\nserver 127.0.0.2 1;\nserver ::1 2;\nno allowlist pool=127.0.0.2:1,[::1]:2');
  });
  it('renders several routes: listeners, rules longest prefix first, split percents, item scopes', () => {
    const base = routeWithDefaults({ eppAddress: '127.0.0.1:1' });
    const e = (epp: string, listener: number, pathPrefix: string, weight: number) => ({ ...base, eppAddress: epp, listener, pathPrefix, weight });
    const entries = [e('127.0.0.1:9001', 0, '/a', 2), e('127.0.0.1:9002', 0, '/a', 1), e('127.0.0.1:9003', 0, '/a/b', 1), e('127.0.0.1:9004', 1, '/', 1)];
    const route = { ...entries[0]!, routes: entries };
    const addrs = { listeners: [{ host: '127.0.0.1', port: 8080 }, { host: '127.0.0.1', port: 8081 }], entries: [7001, 7002, 7003, 7004].map((port) => ({ host: '127.0.0.1', port })) };
    const vars = planeVariables(route, '/w', addrs, { nginx: 'n', nginxModule: 'm', envoy: 'e' });
    const tpl = '{{#listeners}}L{{index}} {{listen}}{{^hasRoot}} 404{{/hasRoot}}:{{#rules}} [{{index}} {{pathPrefix}}{{#split}} split{{/split}}:{{#pools}} {{epp.port}}={{weightPercent}}%{{#last}}*{{/last}}{{/pools}}]{{/rules}}\n{{/listeners}}{{#entries}}{{index}}@{{bind}} {{/entries}}{{multi}} top={{epp}}';
    expect(parseTemplate(tpl).problems).toEqual([]);
    expect(renderTemplate(tpl, vars)).toBe(
      'L0 127.0.0.1:8080 404: [1 /a/b: 9003=100%*] [0 /a split: 9001=67% 9002=33%*]\n' +
        'L1 127.0.0.1:8081: [2 /: 9004=100%*]\n' +
        '0@127.0.0.1:7001 1@127.0.0.1:7002 2@127.0.0.1:7003 3@127.0.0.1:7004 true top=127.0.0.1:9001',
    );
    // One route: the lists hold it, bound to {{listen}} (one template serves both).
    const one = planeVariables(base, '/w', { host: '127.0.0.1', port: 8080 }, { nginx: 'n', nginxModule: 'm', envoy: 'e' });
    expect(renderTemplate('{{#entries}}{{index}}@{{bind}} {{epp}}{{/entries}} {{multi}}', one)).toBe('0@127.0.0.1:8080 127.0.0.1:1 false');
  });

  it('knows an item variable only inside its list', () => {
    expect(parseTemplate('{{weightPercent}}').problems[0]?.message).toContain('{{weightPercent}} is not a variable');
    expect(parseTemplate('{{#rules}}{{/rules}}').problems[0]?.message).toContain('{{#rules}} is not a variable');
    expect(parseTemplate('{{#listeners}}{{#rules}}{{split}}{{#pools}}{{bind}}{{/pools}}{{/rules}}{{/listeners}}').problems).toEqual([]);
    expect(parseTemplate('{{#entries}}{{split}}{{/entries}}').problems[0]?.message).toContain('{{split}} is not a variable');
  });
});
