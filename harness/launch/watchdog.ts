// A plane must not outlive the eppkit that started it. Signals eppkit can catch are handled
// in-process (stopAllOnInterrupt); SIGKILL, the OOM killer or a native crash cannot be. So a
// command that starts planes may also start a watchdog: a small child in its own process group
// that holds the process group of every child eppkit launched (told over a pipe), and kills
// those groups when the pipe closes, which happens however eppkit ends (PR_SET_PDEATHSIG done
// by hand; Node has no prctl). It also reads eppkit's resident memory from /proc and SIGKILLs
// eppkit past a hard ceiling: growth inside one synchronous native call (the http2 loop of
// docs/fuzz.md) never yields to an in-process check. watchdog-process.ts is the child.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { watchGroups } from './interrupt.ts';
import { typeScriptNode } from './launch.ts';

export interface WatchdogOptions {
  /** SIGKILL eppkit (and its planes) when its RSS passes this, bytes; 0 = no ceiling. */
  ceilingBytes?: number;
  /** How often the watchdog samples, ms. Default 100. */
  intervalMs?: number;
}

let current: ChildProcess | undefined;

/**
 * Starts the watchdog for this process (once; later calls do nothing) and hands it every
 * tracked process group (interrupt.ts). Linux only (reads /proc); elsewhere it does nothing
 * and the in-process handlers are all there is.
 */
export function startWatchdog(o: WatchdogOptions = {}): void {
  if (current || !existsSync('/proc/self/statm')) return;
  const script = new URL('./watchdog-process.ts', import.meta.url).pathname;
  // Its own group: a Ctrl-C meant for eppkit must not take the watchdog down before it is needed.
  const child = spawn(typeScriptNode(), [script, String(process.pid), String(o.ceilingBytes ?? 0), String(o.intervalMs ?? 100)], {
    detached: true,
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  const stdin = child.stdin;
  stdin?.on('error', () => {});
  child.on('error', () => {});
  // Neither the child nor the pipe keeps eppkit alive; the pipe closes when eppkit exits.
  child.unref();
  (stdin as unknown as { unref?: () => void } | null)?.unref?.();
  current = child;
  watchGroups({ add: (g) => void stdin?.write(`+${g}\n`), remove: (g) => void stdin?.write(`-${g}\n`) });
}

/** The watchdog's pid (tests). */
export function watchdogPid(): number | undefined {
  return current?.pid;
}
