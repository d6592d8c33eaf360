// `eppkit bench mock-epp`: the mock EPP alone, driven over ext_proc by the load client of
// mock-epp/load/ (owned by the mock EPP). The mock runs as a child process so it does not
// share an event loop with the client. This file only adapts that client to the bench report.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EppkitError } from '../../core/errors.ts';
import type { BenchOptions } from './bench-options.ts';
import type { BenchReport } from './bench-report.ts';
import type { BenchRunOptions } from './bench-runner.ts';

const LOAD_MODULE = new URL('../../mock-epp/load/ext-proc-load.ts', import.meta.url);

export async function runMockEppBench(_o: BenchOptions, _run: BenchRunOptions): Promise<BenchReport> {
  if (!existsSync(fileURLToPath(LOAD_MODULE))) {
    throw new EppkitError('EPPKIT_TOOL_MISSING', { tool: 'the ext_proc load client (mock-epp/load/)', reason: 'it is not in this checkout yet' });
  }
  throw new EppkitError('EPPKIT_TOOL_MISSING', { tool: 'the ext_proc load client (mock-epp/load/)', reason: 'not wired yet' });
}
