// The one registry of eppkit's user-facing errors (modelled on fastify's FST_ERR_* codes).
// Every code is documented in docs/errors.md with how to solve it. A user's mistake is an
// EppkitError and the CLI prints its message, never a stack trace.

export interface ErrorSpec {
  /** Exit code the CLI uses when this error ends a command. */
  exit: number;
  /** One line: what went wrong (may use {placeholders} filled from `details`). */
  message: string;
}

export const ERRORS = {
  EPPKIT_CONFIG_INVALID: { exit: 2, message: 'invalid configuration in {source}' },
  EPPKIT_CONFIG_UNREADABLE: { exit: 2, message: 'cannot read {source}: {reason}' },
  EPPKIT_USAGE: { exit: 2, message: '{reason}' },
  EPPKIT_PORT_IN_USE: { exit: 1, message: 'cannot listen on {address}: address already in use' },
  EPPKIT_LISTEN_FAILED: { exit: 1, message: 'cannot listen on {address}: {reason}' },
  EPPKIT_TOOL_MISSING: { exit: 1, message: '{tool} is not available: {reason}' },
  EPPKIT_START_FAILED: { exit: 1, message: '{what} did not start: {reason}' },
  EPPKIT_BUILD_FAILED: { exit: 1, message: 'build of {what} failed: {reason}' },
  EPPKIT_SCENARIO_INVALID: { exit: 2, message: 'invalid scenario file {source}' },
  EPPKIT_PLANE_INVALID: { exit: 2, message: 'invalid plane file {source}' },
  EPPKIT_INPUT_INVALID: { exit: 2, message: 'invalid input files: {source}' },
  EPPKIT_TIMEOUT: { exit: 1, message: '{what} timed out after {ms} ms' },
  EPPKIT_MEMORY_LIMIT: { exit: 1, message: '{what} grew to {rss} MiB resident, over its limit of {limit} MiB; stopped it and every process it started' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export interface Problem {
  /** Where in the input, as a dotted/bracketed path (`rules[2].match.headers`), '' for the root. */
  path: string;
  message: string;
  /** 1-based line in the source file, when known. */
  line?: number;
  /** The file, when one error reports the problems of several files. */
  file?: string;
}

export class EppkitError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;
  readonly problems: readonly Problem[];
  readonly details: Readonly<Record<string, string | number>>;

  constructor(code: ErrorCode, details: Record<string, string | number> = {}, problems: Problem[] = []) {
    const spec = ERRORS[code];
    const head = spec.message.replace(/\{(\w+)\}/g, (_, k: string) => String(details[k] ?? `{${k}}`));
    super(head);
    this.name = 'EppkitError';
    this.code = code;
    this.exitCode = spec.exit;
    this.problems = problems;
    this.details = details;
  }

  /** The full text a user sees: the headline, then every problem on its own line (grouped by file when there are several). */
  format(): string {
    const lines = [`${this.code}: ${this.message}`];
    const item = (p: Problem, indent: string): string => {
      const where = [p.line !== undefined ? `line ${p.line}` : '', p.path || '(root)'].filter(Boolean).join(', ');
      return `${indent}- ${where}: ${p.message}`;
    };
    let file: string | undefined;
    for (const p of this.problems) {
      if (p.file === undefined) {
        lines.push(item(p, '  '));
        continue;
      }
      if (p.file !== file) lines.push(`  ${p.file}`);
      file = p.file;
      lines.push(item(p, '    '));
    }
    return lines.join('\n');
  }
}

/**
 * One error for the problems of several inputs (every bad file of a run at once): the code
 * they share (EPPKIT_INPUT_INVALID when they differ), each problem named with its file.
 * Errors without problems of their own (an unreadable file) become one problem of their file.
 */
export function combineErrors(errors: readonly EppkitError[]): EppkitError {
  if (errors.length === 1) return errors[0] as EppkitError;
  if (errors.length === 0) throw new RangeError('combineErrors needs at least one error');
  const codes = new Set(errors.map((e) => e.code));
  // One code for all, if its headline needs nothing but the files ("cannot read {source}: {reason}" does).
  const shared = codes.size === 1 ? (errors[0] as EppkitError).code : undefined;
  const code: ErrorCode = shared && !/\{(?!source\})\w+\}/.test(ERRORS[shared].message) ? shared : 'EPPKIT_INPUT_INVALID';
  const problems = errors.flatMap((e) => {
    const file = String(e.details.files ?? e.details.source ?? '?');
    return e.problems.length > 0 ? e.problems.map((p) => ({ ...p, file: p.file ?? file })) : [{ path: '', message: e.message, file }];
  });
  const files = [...new Set(problems.map((p) => p.file))];
  const n = problems.length;
  return new EppkitError(code, { source: `${files.join(', ')}: ${n} problem${n === 1 ? '' : 's'}`, files: files.join(', ') }, problems);
}

/**
 * Runs every loader (plane files, scenario files, ...) even when one fails, so a user sees the
 * problems of every input at once: EppkitErrors are combined into one, anything else is a bug
 * and thrown as is.
 */
export function loadAll<T extends ReadonlyArray<() => unknown>>(...loads: T): { -readonly [K in keyof T]: ReturnType<T[K]> } {
  const errors: EppkitError[] = [];
  const out = loads.map((load) => {
    try {
      return load();
    } catch (e) {
      if (e instanceof EppkitError) errors.push(e);
      else throw e;
      return undefined;
    }
  });
  if (errors.length > 0) throw combineErrors(errors);
  return out as { -readonly [K in keyof T]: ReturnType<T[K]> };
}

export function isEppkitError(e: unknown): e is EppkitError {
  return e instanceof EppkitError;
}
