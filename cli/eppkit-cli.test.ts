// The command line a user meets first: every command is there (static imports), every
// command's --help ends with examples, and every example (in --help and in the README) parses
// with the real options to the command it names. An unknown command or flag names the close one.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EppkitError } from '../core/errors.ts';
import { COMMANDS, commandName } from './commands.ts';
import { checkCommand, eppkitCli } from './eppkit-cli.ts';

const ROOT = new URL('../', import.meta.url).pathname;

/** Parses like `eppkit <args>` with every handler swapped for a recorder: [commands run, --help output]. */
async function dryParse(args: readonly string[]): Promise<{ ran: string[]; output: string }> {
  const ran: string[] = [];
  const output = await new Promise<string>((resolve, reject) => {
    eppkitCli(args, { dryRun: (command) => ran.push(command) })
      .wrap(null)
      .exitProcess(false)
      .parse([...args], {}, (err, _argv, out) => (err ? reject(err) : resolve(out)));
  });
  return { ran, output };
}

/** Shell words of one command line (quotes, no expansion); null when it is not an eppkit command. */
function eppkitArgs(line: string): string[] | null {
  const words: string[] = [];
  let cur: string | null = null;
  let quote: string | null = null;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = null;
      else cur = (cur ?? '') + ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      cur = cur ?? '';
    } else if (/\s/.test(ch)) {
      if (cur !== null) words.push(cur);
      cur = null;
    } else if (ch === '#' && cur === null) break;
    else cur = (cur ?? '') + ch;
  }
  if (cur !== null) words.push(cur);
  // The eppkit part of a pipeline or a list: `npm ci && npx eppkit run`, `... | eppkit bench merge -`.
  const segments: string[][] = [[]];
  for (const w of words) {
    if (['|', '&&', '||', ';', '&'].includes(w)) segments.push([]);
    else segments.at(-1)?.push(w);
  }
  for (const seg of segments) {
    let i = 0;
    while (/^[A-Z_]+=/.test(seg[i] ?? '')) i++;
    if (seg[i] === 'npx' && seg[i + 1] === 'eppkit') return seg.slice(i + 2);
    if (seg[i] === 'eppkit' || seg[i] === '$0') return seg.slice(i + 1);
    if (seg[i] === 'node' && seg[i + 1] === 'bin/eppkit.js') return seg.slice(i + 2);
  }
  return null;
}

/** The example command lines of a --help text (yargs prints them unwrapped with wrap(null)). */
function examplesOf(help: string): string[] {
  const at = help.indexOf('\nExamples:\n');
  if (at < 0) return [];
  const lines: string[] = [];
  for (const l of help.slice(at + '\nExamples:\n'.length).split('\n')) {
    if (!l.startsWith('  ')) break;
    lines.push((l.trim().split(/\s{2,}/)[0] ?? '').trim());
  }
  return lines;
}

describe('eppkit command line', () => {
  it('has every command of the README, statically imported', () => {
    const names = COMMANDS.map(commandName);
    expect(names).toEqual(['mock-epp', 'node-proxy', 'run', 'list', 'report', 'bench', 'build', 'backend', 'fuzz']);
    const readme = readFileSync(`${ROOT}README.md`, 'utf8');
    const inTable = [...readme.matchAll(/^\| `eppkit ([a-z-]+)/gm)].map((m) => m[1]);
    for (const n of inTable) expect(names).toContain(n);
    // No command found by a path at run time any more: a missing file is an import error.
    expect(readFileSync(`${ROOT}cli/commands.ts`, 'utf8')).not.toMatch(/import\(/);
  });

  it("gives every command's --help an Examples section, and every example parses to its command with the real options", async () => {
    const helps: Array<[string[], string]> = [];
    for (const c of COMMANDS) helps.push([[commandName(c)], (await dryParse([commandName(c), '--help'])).output]);
    for (const sub of [['build', 'nginx'], ['build', 'bench'], ['build', 'images'], ['bench', 'merge']]) helps.push([sub, (await dryParse([...sub, '--help'])).output]);
    let checked = 0;
    for (const [cmd, help] of helps) {
      const examples = examplesOf(help);
      if (cmd.length === 1) expect(examples.length, `eppkit ${cmd.join(' ')} --help has examples`).toBeGreaterThan(0);
      for (const ex of examples) {
        const args = eppkitArgs(ex);
        expect(args, ex).not.toBeNull();
        const { ran } = await dryParse(args as string[]).catch((e: unknown) => {
          throw new Error(`example "${ex}" does not parse: ${e instanceof EppkitError ? e.format() : String(e)}`);
        });
        expect(ran[0]?.split(' ')[0], ex).toBe(cmd[0]);
        // Files of this repository an example names exist.
        for (const a of args as string[]) if (/^(scenarios|planes)\//.test(a)) expect(existsSync(`${ROOT}${a}`), `${ex}: ${a}`).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(COMMANDS.length * 2);
  });

  it("parses every eppkit command of the README's code blocks and inline examples", async () => {
    const readme = readFileSync(`${ROOT}README.md`, 'utf8');
    const lines = [...readme.matchAll(/```(?:bash|sh)?\n([\s\S]*?)```/g)].flatMap((m) => (m[1] ?? '').split('\n'));
    lines.push(...[...readme.matchAll(/`((?:npx eppkit|eppkit) [^`|\\[\]]+)`/g)].map((m) => m[1] ?? ''));
    const commands = lines.map(eppkitArgs).filter((a): a is string[] => a !== null && a.length > 0);
    expect(commands.length).toBeGreaterThanOrEqual(8);
    for (const args of commands) {
      const { ran } = await dryParse(args).catch((e: unknown) => {
        throw new Error(`README: "eppkit ${args.join(' ')}" does not parse: ${e instanceof EppkitError ? e.format() : String(e)}`);
      });
      expect(ran.length, args.join(' ')).toBe(1);
    }
  });

  it("refuses an unknown command as such, naming the close one (exit 2), and an unknown flag with the close flag", async () => {
    const refused = (fn: () => unknown): EppkitError => {
      try {
        fn();
      } catch (e) {
        if (e instanceof EppkitError) return e;
        throw e;
      }
      throw new Error('expected a usage error');
    };
    const e = refused(() => checkCommand(['rn', '--data-plane', 'nginx']));
    expect(e.code).toBe('EPPKIT_USAGE');
    expect(e.exitCode).toBe(2);
    expect(e.message).toMatch(/^Unknown command 'rn'\. Did you mean 'run'\?/);
    expect(refused(() => checkCommand(['teleport'])).message).toMatch(/^Unknown command 'teleport'\. Commands: mock-epp, node-proxy, run/);
    expect(() => checkCommand(['--help'])).not.toThrow();
    expect(() => checkCommand(['run', 'nosuch'])).not.toThrow();
    await expect(dryParse(['run', '--data-plan', 'nginx'])).rejects.toThrow(/unknown option --data-plan \(did you mean --data-plane\?\)/);
    await expect(dryParse(['build', 'ngnix'])).rejects.toThrow(/Unknown command 'ngnix'\. Did you mean 'nginx'\?/);
  });
});
