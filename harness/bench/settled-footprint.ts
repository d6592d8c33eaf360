// The plane's footprint after a bench target, once the connections the load client just closed
// are gone from it: a client that exits with 200-500 keep-alive connections leaves the plane
// that many sockets to close, and on a busy machine the plane gets to those FINs a few hundred
// ms later. Sampled at once, those sockets read as an fd leak (a failure with --strict). A
// real leak does not go away: the count stops falling and that count is what is judged.
import type { PlaneFootprint } from '../runner/results.ts';

export interface SettleOptions {
  /** Between samples. */
  everyMs?: number;
  /** Never waits longer than this. */
  maxMs?: number;
}

/** Samples until the fd count stops falling (two samples in a row not lower), then returns the last. */
export async function settledFootprint(sample: () => PlaneFootprint | undefined, o: SettleOptions = {}): Promise<PlaneFootprint | undefined> {
  const every = o.everyMs ?? 100;
  const until = performance.now() + (o.maxMs ?? 2000);
  let last = sample();
  while (last && performance.now() < until) {
    await new Promise((r) => setTimeout(r, every));
    const next = sample();
    if (!next) return last;
    const falling = next.fds < last.fds;
    last = next;
    if (!falling) break;
  }
  return last;
}
