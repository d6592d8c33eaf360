// The GitHub Action (action.yml) and the example workflow call only what exists: every eppkit
// command, subcommand and flag in their scripts is in eppkit's own --help, the inputs the
// workflow passes are the action's, the files they name are in the repository; and the
// action's run step, executed as the runner would (bash, its env, GITHUB_OUTPUT), really runs
// a scenario and writes the reports it uploads.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { eppkitCommand } from '../../harness/launch/launch.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const action = parse(readFileSync(join(ROOT, 'action.yml'), 'utf8')) as {
  inputs: Record<string, { default?: string }>;
  outputs: Record<string, unknown>;
  runs: { using: string; steps: Array<{ id?: string; name?: string; run?: string; uses?: string; env?: Record<string, string>; if?: string }> };
};
const workflow = parse(readFileSync(join(ROOT, '.github', 'workflows', 'eppkit-example.yml'), 'utf8')) as {
  jobs: Record<string, { strategy?: { matrix: { include: Array<Record<string, string>> } }; steps: Array<{ uses?: string; run?: string; with?: Record<string, unknown> }> }>;
};

const { command: NODE, args: PRE } = eppkitCommand();
const helpCache = new Map<string, { code: number; text: string }>();
function help(words: string[]): { code: number; text: string } {
  const key = words.join(' ');
  if (!helpCache.has(key)) {
    const r = spawnSync(NODE, [...PRE, ...words, '--help'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    helpCache.set(key, { code: r.status ?? 1, text: `${r.stdout}${r.stderr}` });
  }
  return helpCache.get(key)!;
}

/** `eppkit <cmd> [sub] --flags` calls in a script: `npx eppkit ...` or `bin/eppkit.js" ...`. */
function eppkitCalls(script: string): Array<{ words: string[]; flags: string[] }> {
  const out: Array<{ words: string[]; flags: string[] }> = [];
  for (const line of script.split('\n')) {
    const m = /(?:npx eppkit|bin\/eppkit\.js"?)\s+(.*)$/.exec(line);
    if (!m) continue;
    const tokens = m[1]!.split(/\s+/);
    const words = tokens.slice(0, 2).filter((t) => /^[a-z][a-z-]*$/.test(t));
    out.push({ words: words.length === 2 && help(words).code !== 0 ? words.slice(0, 1) : words, flags: tokens.filter((t) => /^--[a-z]/.test(t)).map((t) => t.split('=')[0]!) });
  }
  return out;
}

describe('action.yml and the example workflow', () => {
  it('the action is a composite whose every eppkit call and flag exists', () => {
    expect(action.runs.using).toBe('composite');
    const scripts = action.runs.steps.flatMap((s) => (s.run ? [s.run] : []));
    const runStep = action.runs.steps.find((s) => s.id === 'run')!;
    // The run step builds its argument list: every flag it adds must be one `eppkit run` has.
    const runFlags = [...runStep.run!.matchAll(/(--[a-z-]+)/g)].map((m) => m[1]!);
    expect(runFlags).toEqual(expect.arrayContaining(['--report-dir', '--data-plane', '--plane', '--tag']));
    for (const f of runFlags) expect(help(['run']).text, `eppkit run ${f}`).toContain(f);
    for (const call of scripts.flatMap(eppkitCalls)) {
      expect(help(call.words).code, `eppkit ${call.words.join(' ')}`).toBe(0);
      for (const f of call.flags) expect(help(call.words).text, `eppkit ${call.words.join(' ')} ${f}`).toContain(f);
    }
    // What the build input may name.
    for (const what of ['nginx', 'bench', 'images']) expect(help(['build', what]).code, `eppkit build ${what}`).toBe(0);
    expect(existsSync(join(ROOT, 'scripts', 'setup-system.sh'))).toBe(true);
  });

  it('the workflow passes only the action\'s inputs, names files that exist and calls what exists', () => {
    const inputs = Object.keys(action.inputs);
    for (const job of Object.values(workflow.jobs)) {
      for (const step of job.steps) {
        if (step.uses === './') for (const k of Object.keys(step.with ?? {})) expect(inputs, `input ${k}`).toContain(k);
        for (const call of eppkitCalls(step.run ?? '')) {
          expect(help(call.words).code, `eppkit ${call.words.join(' ')}`).toBe(0);
          for (const f of call.flags) expect(help(call.words).text, `eppkit ${call.words.join(' ')} ${f}`).toContain(f);
        }
      }
      for (const row of job.strategy?.matrix.include ?? []) if (row.plane) expect(existsSync(join(ROOT, row.plane)), row.plane).toBe(true);
    }
  });

  it('the action\'s run step, run as the runner runs it, runs a scenario and writes the reports it uploads', () => {
    const work = mkdtempSync(join(tmpdir(), 'eppkit-action-'));
    const reportDir = join(work, 'report');
    const out = join(work, 'github-output');
    const runStep = action.runs.steps.find((s) => s.id === 'run')!;
    const env = {
      ...process.env,
      NO_COLOR: '1',
      GITHUB_ACTION_PATH: ROOT,
      GITHUB_OUTPUT: out,
      EPPKIT_DATA_PLANE: 'node-proxy',
      EPPKIT_PLANES: '',
      EPPKIT_SCENARIOS: join(ROOT, 'scenarios', 'routing-follows-epp.yaml'),
      EPPKIT_TAG: '',
      EPPKIT_REPORT_DIR: reportDir,
      PATH: `${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH}`,
    };
    // `node` in the step is the runner's; here the Node eppkit runs on.
    execFileSync('bash', ['-e', '-c', runStep.run!], { env, cwd: work, stdio: 'pipe', timeout: 120_000 });
    expect(readFileSync(out, 'utf8')).toContain(`report-dir=${reportDir}`);
    for (const f of ['results.json', 'junit.xml', 'report.md', 'report.html']) expect(existsSync(join(reportDir, f)), f).toBe(true);
    const results = JSON.parse(readFileSync(join(reportDir, 'results.json'), 'utf8')) as unknown;
    expect(JSON.stringify(results)).toContain('routing-follows-epp');
  }, 180_000);
});
