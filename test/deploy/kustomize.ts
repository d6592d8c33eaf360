// Renders deploy/ with the real kustomize (built by scripts/setup-system.sh from the Go module
// proxy into $EPPKIT_HOME/bin). Locally a missing kustomize skips; with CI=true it fails.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { env, eppkitHome } from '../../core/env.ts';

export function kustomizeBin(): string | undefined {
  for (const c of [env().EPPKIT_KUSTOMIZE, join(eppkitHome(), 'bin', 'kustomize')]) if (c && existsSync(c)) return c;
  try {
    execFileSync('kustomize', ['version'], { stdio: 'ignore' });
    return 'kustomize';
  } catch {
    return undefined;
  }
}

export function kustomizeSkipReason(): string | undefined {
  if (kustomizeBin()) return undefined;
  const reason = 'kustomize is not installed (bash scripts/setup-system.sh installs it)';
  if (process.env.CI === 'true' || process.env.CI === '1') throw new Error(`CI=true and kustomize is required: ${reason}`);
  process.stderr.write(`[eppkit] deploy tests skipped: ${reason}\n`);
  return reason;
}

export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string> };

/** `kustomize build dir` as objects. */
export function kustomizeBuild(dir: string): K8sObject[] {
  const out = execFileSync(kustomizeBin()!, ['build', dir], { encoding: 'utf8' });
  return parseAllDocuments(out).map((d) => {
    if (d.errors.length) throw new Error(`kustomize build ${dir}: ${d.errors[0]!.message}`);
    return d.toJS() as K8sObject;
  });
}
