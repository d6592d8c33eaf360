// Everything launched and not yet ended, so that an interrupted command (Ctrl-C, SIGTERM of
// `eppkit run`, fuzz, bench) takes it all down before it exits: no orphan keeps a port.
export interface Killable {
  /** Kills it now, synchronously (SIGKILL a child, `docker rm -f` a container). */
  killNow(): void;
}

const LIVE = new Set<Killable>();

export function track(k: Killable): void {
  LIVE.add(k);
}

export function untrack(k: Killable): void {
  LIVE.delete(k);
}

/** Kills every launched process and container still running. */
export function killAllLaunched(): void {
  for (const k of LIVE) {
    try {
      k.killNow();
    } catch {
      // Gone meanwhile: nothing to kill.
    }
  }
  LIVE.clear();
}

/**
 * For a command that starts planes, EPPs and backends (run, fuzz, bench): on Ctrl-C or SIGTERM,
 * take every launched thing down, say so, and exit 130.
 */
export function stopAllOnInterrupt(): void {
  const interrupted = (): void => {
    killAllLaunched();
    process.stderr.write('\ninterrupted: stopped every process this run started\n');
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
}
