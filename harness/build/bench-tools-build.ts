// `eppkit build bench`: the compiled helpers of `eppkit bench` (proxies/nginx-epp/bench-tools):
// eppkit-echo-backend, eppkit-bench-epp, eppkit-ext-proc-load (the mock-epp mode's client) and
// eppkit-http-load (the compiled HTTP load client). They share the module's workspace and dependency
// graph, so after `eppkit build nginx` only these binaries are compiled (about 10-30 s).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { EppkitError } from '../../core/errors.ts';
import { CRATE_DIR, cargoTargetDir, requireCargo, runBuildStep } from './nginx-module-build.ts';
import { env, eppkitHome } from '../../core/env.ts';

export const BENCH_TOOLS = { echoBackend: 'eppkit-echo-backend', benchEpp: 'eppkit-bench-epp', extProcLoad: 'eppkit-ext-proc-load', httpLoad: 'eppkit-http-load' } as const;
export type BenchTool = (typeof BENCH_TOOLS)[keyof typeof BENCH_TOOLS];

/** Where `eppkit build bench` leaves a tool ($EPPKIT_BENCH_TOOLS_DIR overrides the directory). */
export function benchToolPath(tool: BenchTool): string {
  return join(env().EPPKIT_BENCH_TOOLS_DIR ?? join(cargoTargetDir(), 'release'), tool);
}

/** The tool's path when it has been built, else undefined. */
export function builtBenchTool(tool: BenchTool): string | undefined {
  const p = benchToolPath(tool);
  return existsSync(p) ? p : undefined;
}

export interface BenchToolsBuildOptions {
  jobs?: number;
  onOutput?: (chunk: string) => void;
}

/** Builds (or finds up to date) every tool; returns their paths. */
export async function buildBenchTools(o: BenchToolsBuildOptions = {}): Promise<string[]> {
  requireCargo("eppkit bench's compiled echo backend and EPP");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CARGO_TARGET_DIR: cargoTargetDir(eppkitHome()),
    PROTOC: process.env.PROTOC ?? '/usr/bin/protoc',
  };
  await runBuildStep('eppkit-bench-tools (cargo build)', 'cargo', ['build', '--release', '--locked', '-j', String(o.jobs ?? 2), '-p', 'eppkit-bench-tools', '--manifest-path', join(CRATE_DIR, 'Cargo.toml')], {
    env,
    onOutput: o.onOutput,
  });
  const out = Object.values(BENCH_TOOLS).map((t) => join(env.CARGO_TARGET_DIR as string, 'release', t));
  for (const p of out) if (!existsSync(p)) throw new EppkitError('EPPKIT_BUILD_FAILED', { what: 'eppkit-bench-tools', reason: `cargo succeeded but ${p} is missing` });
  return out;
}
