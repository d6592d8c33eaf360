// For tests that need Docker: locally they are skipped, with the reason, when no daemon answers;
// with CI=true a missing Docker is a failure, never a silent skip.
import { dockerAvailable } from './docker-cli.ts';

/** undefined when Docker answers; the reason to skip otherwise. Throws under CI=true. */
export async function dockerSkipReason(): Promise<string | undefined> {
  const a = await dockerAvailable();
  if (a.ok) return undefined;
  const reason = a.reason ?? 'Docker is not reachable';
  if (process.env.CI === 'true' || process.env.CI === '1') {
    throw new Error(`CI=true and Docker is required: ${reason}`);
  }
  process.stderr.write(`[eppkit] Docker tests skipped: ${reason}\n`);
  return reason;
}
