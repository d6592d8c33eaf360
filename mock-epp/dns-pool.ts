// The mock EPP's pool from DNS: `--endpoints-dns name:port` resolves `name` every refresh and
// makes its addresses (with `port`) the pool. In Kubernetes, `name` is a headless Service over
// the model-server pods, so the pool follows the ready pods, as the real EPP's pod list does,
// without Kubernetes API access. While it runs, DNS owns `endpoints`: a config that changes
// them (PUT /config) is brought back to the DNS answer at the next refresh.
import { lookup } from 'node:dns/promises';
import { EppkitError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';

export interface DnsPoolTarget {
  readonly config: { readonly endpoints: readonly string[] };
  setConfig(input: unknown, source?: string): unknown;
}

export type Resolve = (host: string) => Promise<Array<{ address: string; family: number }>>;

/** `name:port` → its parts; the name may be a DNS name or a literal address. */
export function parseDnsTarget(text: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text.trim());
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535) {
    throw new EppkitError('EPPKIT_USAGE', { reason: `--endpoints-dns must be name:port, e.g. eppkit-echo-pods:8000 (got "${text}")` });
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/** Sorted, de-duplicated `ip:port` (`[v6]:port`) list of the answers. */
export function endpointsOf(answers: ReadonlyArray<{ address: string; family: number }>, port: number): string[] {
  return [...new Set(answers.map((a) => (a.family === 6 ? `[${a.address}]:${port}` : `${a.address}:${port}`)))].sort();
}

export class DnsPool {
  readonly #host: string;
  readonly #port: number;
  readonly #refreshMs: number;
  readonly #resolve: Resolve;
  #timer: NodeJS.Timeout | undefined;
  #failing = false;

  constructor(target: string, refreshMs = 2000, resolve: Resolve = (h) => lookup(h, { all: true })) {
    const { host, port } = parseDnsTarget(target);
    this.#host = host;
    this.#port = port;
    this.#refreshMs = refreshMs;
    this.#resolve = resolve;
  }

  /** Resolves once now (so the pool is there before the first stream), then every refresh. */
  async start(epp: DnsPoolTarget, logger: Logger): Promise<void> {
    await this.refresh(epp, logger);
    this.#timer = setInterval(() => void this.refresh(epp, logger), this.#refreshMs);
    this.#timer.unref();
  }

  /** One resolution; a failure keeps the pool as it was and is logged once per failing streak. */
  async refresh(epp: DnsPoolTarget, logger: Logger): Promise<void> {
    let endpoints: string[];
    try {
      endpoints = endpointsOf(await this.#resolve(this.#host), this.#port);
    } catch (e) {
      if (!this.#failing) logger.warn({ host: this.#host, err: (e as Error).message }, 'endpoints-dns: resolution failed; keeping the pool as it is');
      this.#failing = true;
      return;
    }
    if (this.#failing) logger.info({ host: this.#host }, 'endpoints-dns: resolving again');
    this.#failing = false;
    const current = [...epp.config.endpoints].sort();
    if (current.length === endpoints.length && current.every((e, i) => e === endpoints[i])) return;
    epp.setConfig({ ...epp.config, endpoints }, `--endpoints-dns ${this.#host}`);
    logger.info({ host: this.#host, endpoints }, 'endpoints-dns: pool changed');
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
