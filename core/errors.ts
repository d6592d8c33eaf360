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

  /** The full text a user sees: the headline, then every problem on its own line. */
  format(): string {
    const lines = [`${this.code}: ${this.message}`];
    for (const p of this.problems) {
      const where = [p.line !== undefined ? `line ${p.line}` : '', p.path || '(root)'].filter(Boolean).join(', ');
      lines.push(`  - ${where}: ${p.message}`);
    }
    return lines.join('\n');
  }
}

export function isEppkitError(e: unknown): e is EppkitError {
  return e instanceof EppkitError;
}
