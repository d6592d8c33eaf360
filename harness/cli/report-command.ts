// `eppkit report <results.json...> [--out docs/MATRIX.md] [--readme README.md]`: the scenario ×
// data plane matrix from a run's results.json (pass, fail with a one-line reason, skip with its
// reason, the run's date and command), and the short per-plane table in the README. Several
// files merge, later ones winning per scenario × plane: a full run plus a run of the scenarios
// added since gives a current matrix without re-running everything.
import { readFileSync, writeFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { EppkitError } from '../../core/errors.ts';
import { mergeResults, renderMatrix, renderReadmeTable, spliceReadme, type MatrixInput } from '../reporters/matrix.ts';

interface Args {
  results: string[];
  out: string;
  readme?: string;
}

function readResults(file: string): MatrixInput {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new EppkitError('EPPKIT_USAGE', { reason: `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (give the results.json of an eppkit run)` });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new EppkitError('EPPKIT_USAGE', { reason: `${file} is not JSON (give the results.json of an eppkit run)` });
  }
  const scenarios = (data as { scenarios?: unknown })?.scenarios;
  if (!Array.isArray(scenarios) || scenarios.some((s) => typeof s?.name !== 'string' || typeof s?.dataPlane !== 'string' || !['passed', 'failed', 'skipped'].includes(s?.status)))
    throw new EppkitError('EPPKIT_USAGE', { reason: `${file} has no scenarios[] of { name, dataPlane, status } (is it an eppkit results.json?)` });
  return data as MatrixInput;
}

const command: CommandModule<object, Args> = {
  command: 'report <results..>',
  describe: 'Write the scenario × data plane matrix (docs/MATRIX.md) and the README table from a run\'s results.json',
  builder: (y) =>
    y
      .positional('results', { type: 'string', array: true, demandOption: true, describe: 'results.json of eppkit runs (e.g. eppkit run --data-plane all); later files win per scenario × plane' })
      .option('out', { type: 'string', default: 'docs/MATRIX.md', describe: 'where the matrix goes' })
      .option('readme', { type: 'string', describe: 'also replace the matrix block of this README (between its markers)' }) as never,
  handler: (argv) => {
    const files = argv.results.map((f) => resolve(f));
    const r = mergeResults(files.map(readResults));
    const by = `eppkit report ${files.map((f) => relative(process.cwd(), f) || f).join(' ')}`;
    writeFileSync(argv.out, renderMatrix(r, by));
    process.stdout.write(`wrote ${argv.out}\n`);
    if (argv.readme) {
      writeFileSync(argv.readme, spliceReadme(readFileSync(argv.readme, 'utf8'), renderReadmeTable(r)));
      process.stdout.write(`updated the matrix table in ${argv.readme}\n`);
    }
  },
};

export default command;
