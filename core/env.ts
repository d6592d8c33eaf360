// Every EPPKIT_* environment variable eppkit reads, in one schema: validated once (per distinct
// set of EPPKIT_* values, so a test that changes one gets it re-read), frozen, and reported like
// any other input (source "environment", path = the variable's name, every problem at once).
// docs/environment.md is the table of these variables; keep both in step.
// An empty value means unset (a CI template that always sets the variable, empty by default).
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { validate } from './config-file.ts';

const path = z.string().min(1);
const pinoLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
const flag = z.enum(['0', '1', 'true', 'false']).transform((v) => v === '1' || v === 'true');
const port = z.coerce.number().int('must be a whole number').min(1, 'must be a port 1-65535').max(65535, 'must be a port 1-65535');

export const envSchema = z.object({
  /** Cache dir: Envoy venv, nginx source tree, Docker contexts, build logs. */
  EPPKIT_HOME: path.optional(),
  /** pino level of eppkit's servers (mock-epp, node-proxy, backend). */
  EPPKIT_LOG_LEVEL: pinoLevel.optional(),
  /** Level of the bench's Node helpers (default warn: their logs would cost the CPU the bench measures). */
  EPPKIT_BENCH_LOG_LEVEL: pinoLevel.optional(),
  /** Envoy's --log-level. */
  EPPKIT_ENVOY_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warning', 'warn', 'error', 'critical', 'off']).optional(),
  EPPKIT_NGINX_BIN: path.optional(),
  /** The Rust module .so the harness loads (and copies into eppkit/nginx-epp). */
  EPPKIT_NGINX_MODULE: path.optional(),
  EPPKIT_NJS_MODULE: path.optional(),
  /** The envoy binary the harness runs. */
  EPPKIT_ENVOY_BIN: path.optional(),
  /** The envoy binary copied into eppkit/envoy. */
  EPPKIT_ENVOY: path.optional(),
  /** The docker client. */
  EPPKIT_DOCKER: path.optional(),
  /** Run eppkit/node as built, without refreshing it from this checkout first. */
  EPPKIT_DOCKER_NO_REFRESH: flag.optional(),
  /** The npm package dir of Node 24 copied into eppkit/node. */
  EPPKIT_NPM_DIR: path.optional(),
  /** CA bundle copied into the images. */
  EPPKIT_CA_BUNDLE: path.optional(),
  /** Where the compiled bench tools are (default $CARGO_TARGET_DIR/release). */
  EPPKIT_BENCH_TOOLS_DIR: path.optional(),
  /** Bearer token the mock EPP's admin API requires (--admin-token wins). */
  EPPKIT_ADMIN_TOKEN: z.string().min(1).optional(),
  /** The kustomize binary (deploy tests). */
  EPPKIT_KUSTOMIZE: path.optional(),
  // --data-plane external (harness/data-planes/external-driver.ts); `eppkit run --external-*` wins.
  EPPKIT_EXTERNAL_URL: z.url().optional(),
  EPPKIT_EXTERNAL_EPP_PORT: port.optional(),
  EPPKIT_EXTERNAL_FEATURES: z.string().optional(),
  EPPKIT_EXTERNAL_FAILURE_MODE: z.enum(['open', 'close']).optional(),
  EPPKIT_EXTERNAL_BODY_MODE: z.enum(['none', 'buffered', 'streamed']).optional(),
  EPPKIT_EXTERNAL_TIMEOUT_MS: z.coerce.number().int('must be a whole number').positive('must be > 0').optional(),
  EPPKIT_EXTERNAL_LOG_FILE: path.optional(),
});

export type EppkitEnv = Readonly<z.output<typeof envSchema>>;

/** The EPPKIT_* entries of `source`, empty values dropped, trimmed. */
function eppkitEntries(source: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(source)) if (k.startsWith('EPPKIT_') && v !== undefined && v.trim() !== '') out[k] = v.trim();
  return out;
}

/** Validates `source` (default process.env); throws EPPKIT_CONFIG_INVALID naming each bad variable. */
export function parseEnv(source: NodeJS.ProcessEnv = process.env): EppkitEnv {
  return validate(envSchema, eppkitEntries(source), 'environment');
}

let cached: { key: string; env: EppkitEnv } | undefined;

/** eppkit's environment, validated and frozen (re-read only when an EPPKIT_* value changed). */
export function env(): EppkitEnv {
  const entries = eppkitEntries(process.env);
  const key = JSON.stringify(entries);
  if (cached?.key !== key) cached = { key, env: validate(envSchema, entries, 'environment') };
  return cached.env;
}

/** $EPPKIT_HOME, else ~/.cache/eppkit: the one place the cache dir is decided. */
export function eppkitHome(): string {
  return env().EPPKIT_HOME ?? join(homedir(), '.cache', 'eppkit');
}

/** The EPPKIT_* variables as set (for a container, which gets eppkit's settings as a child would). */
export function eppkitVariables(): Record<string, string> {
  return eppkitEntries(process.env);
}

/** $EPPKIT_NGINX_BIN, else Debian's /usr/sbin/nginx. */
export function nginxBin(): string {
  return env().EPPKIT_NGINX_BIN ?? '/usr/sbin/nginx';
}
