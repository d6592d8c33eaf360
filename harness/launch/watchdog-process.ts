// The watchdog child (watchdog.ts): argv = eppkit's pid, RSS ceiling in bytes (0 = none),
// sample interval ms. stdin carries "+<pgid>" / "-<pgid>" lines. When stdin ends, eppkit has
// exited (however it ended): every process group still held is SIGKILLed. Past the ceiling,
// eppkit is SIGKILLed first, with a clear error on the shared stderr.
import { readFileSync } from 'node:fs';
import { EppkitError } from '../../core/errors.ts';

const [parent, ceiling, interval] = process.argv.slice(2).map(Number) as [number, number, number];
const groups = new Set<number>();
const PAGE = 4096;

function killGroups(): void {
  for (const g of groups) {
    try {
      process.kill(-g, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  groups.clear();
}

function rssOf(pid: number): number | undefined {
  try {
    return Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * PAGE;
  } catch {
    return undefined;
  }
}

let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d: string) => {
  buf += d;
  const lines = buf.split('\n');
  buf = lines.pop() ?? '';
  for (const l of lines) {
    const pid = Number(l.slice(1));
    if (!Number.isInteger(pid) || pid <= 1) continue;
    if (l[0] === '+') groups.add(pid);
    else if (l[0] === '-') groups.delete(pid);
  }
});
const done = (): void => {
  killGroups();
  process.exit(0);
};
process.stdin.on('end', done);
process.stdin.on('error', done);
// Ctrl-C and SIGTERM are for eppkit; the watchdog goes when its pipe closes.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});

if (ceiling > 0) {
  const t = setInterval(() => {
    const rss = rssOf(parent);
    if (rss === undefined) return void clearInterval(t);
    if (rss <= ceiling) return;
    clearInterval(t);
    try {
      process.kill(parent, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
    killGroups();
    const mib = (b: number): number => Math.round(b / 1024 ** 2);
    const e = new EppkitError('EPPKIT_MEMORY_LIMIT', { what: `eppkit (pid ${parent})`, rss: mib(rss), limit: mib(ceiling) });
    process.stderr.write(`\nerror ${e.format()} (hard ceiling: killed by its watchdog)\n`);
    process.exit(0);
  }, interval);
}
