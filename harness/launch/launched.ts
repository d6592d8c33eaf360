// What launch() hands back for a process or a container alike.
import type { Runtime } from '../data-planes/data-plane-driver.ts';
import type { ExitStatus, WaitTarget } from './wait-strategy.ts';

export interface Launched<T = unknown> extends WaitTarget, AsyncDisposable {
  readonly what: string;
  readonly runtime: Runtime;
  /** What the wait strategy found (a log line's match, Envoy's admin URL and ports, ...). */
  readonly ready: T;
  /** The child's pid (local); undefined for a container (its pids live in its own namespace). */
  readonly pid: number | undefined;
  /** The pid on this host: the child's (local) or the container's init as the host sees it (for /proc sampling). */
  readonly hostPid: number | undefined;
  /** How it ended (code or signal name), once it has; undefined while it runs. */
  readonly exitStatus: ExitStatus | undefined;
  /** Resolves when it has ended (a container: with `docker inspect`'s exit code). */
  readonly exited: Promise<ExitStatus | undefined>;
  tail(chars: number): string;
  /** The first output line matching `re`; EPPKIT_START_FAILED after timeoutMs or when it ends first. */
  waitForLine(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then SIGKILL after graceMs (default 3 s). */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL now. */
  kill(): Promise<void>;
}
