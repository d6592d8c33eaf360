// Everything launched and not yet ended, so that an interrupted command (Ctrl-C, SIGTERM of
// `eppkit run`, fuzz, bench) takes it all down before it exits: no orphan keeps a port.
export interface Killable {
  /** Kills it now, synchronously (SIGKILL a child, `docker rm -f` a container). */
  killNow(): void;
  /** The process group it leads (a local child), for the watchdog (watchdog.ts). */
  group?: number;
}

/** Told of every tracked process group (the watchdog, when one runs). */
export interface GroupWatcher {
  add(group: number): void;
  remove(group: number): void;
}

const LIVE = new Set<Killable>();
let watcher: GroupWatcher | undefined;
let exitHook = false;

export function track(k: Killable): void {
  LIVE.add(k);
  if (k.group !== undefined) watcher?.add(k.group);
  // Children lead their own process groups, so a terminal's Ctrl-C reaches only eppkit: a
  // process that exits (process.exit, the end of a test worker) takes what it still runs down.
  if (!exitHook) {
    exitHook = true;
    process.once('exit', killAllLaunched);
  }
}

export function untrack(k: Killable): void {
  LIVE.delete(k);
  if (k.group !== undefined) watcher?.remove(k.group);
}

/** Hands every tracked process group, now and from now on, to `w`. */
export function watchGroups(w: GroupWatcher): void {
  watcher = w;
  for (const k of LIVE) if (k.group !== undefined) w.add(k.group);
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
