// One ext_proc stream in the mock's fuzz mode: the data plane's first message names the case
// (request header `x-eppkit-fuzz`), the book gives that request's script and endpoint pick,
// and turn k of the script runs when the k-th message arrives (messages queue while a turn
// sleeps). Everything seen and sent is recorded with its time for the oracle
// (harness/fuzz/oracle.ts), which judges from what really happened, not from the script.
import type { Logger } from '../core/logger.ts';
import { headerMapToObject } from '../core/headers.ts';
import type { ProcessingRequest } from '../core/proto.ts';
import { constants as h2 } from 'node:http2';
import type { ExtProcCall, Undecodable } from './session-env.ts';
import { StreamSleeper } from './stream-sleeper.ts';
import {
  VALID_ANSWER,
  answerMessage,
  immediateMessage,
  rawPayload,
  type AnswerPhase,
  type EncodeContext,
  type FuzzEmit,
  type FuzzScript,
} from './fuzz-script.ts';

/** The request header that carries a request's case key to the fuzz-mode mock. */
export const FUZZ_CASE_HEADER = 'x-eppkit-fuzz';

/** One thing that happened on a fuzzed stream, `t` in ms since the stream opened. */
export type FuzzEvent =
  | { t: number; in: AnswerPhase; eos: boolean; bytes?: number }
  | { t: number; undecodable: string }
  | { t: number; out: FuzzEmit['do']; phase?: AnswerPhase | 'none'; emit: FuzzEmit }
  | { t: number; end: 'cancelled' | 'half-closed' | 'by-mock' };

export interface FuzzStreamRecord {
  /** Stream number within this mock (1-based). */
  id: number;
  /** The case key the data plane forwarded (absent: it sent no request headers with one). */
  key?: string;
  pick: string;
  /** performance.now() at open. */
  openedAt: number;
  events: FuzzEvent[];
  /** Messages whose answer the script produced as the grammar's 'valid' rest, not a turn. */
  restFrom?: number;
  done: boolean;
}

/** Where the fuzz session gets scripts and leaves its records. */
export interface FuzzBook {
  /** The script and pick for a case key; undefined = unknown key (answered validly with `defaultPick`). */
  lookup(key: string | undefined): { script: FuzzScript; pick: string } | undefined;
  defaultPick(): string;
  /** The data plane's request body mode when it does not say (protocol_config): FULL_DUPLEX answers echo chunks. */
  fullDuplex: boolean;
  /** Called when a stream opens (the record fills in as it goes) . */
  opened(r: FuzzStreamRecord): void;
  /** Called once when the stream is over. */
  closed(r: FuzzStreamRecord): void;
}

const PHASES: readonly AnswerPhase[] = ['request_headers', 'response_headers', 'request_body', 'response_body', 'request_trailers', 'response_trailers'];

export class FuzzSession {
  readonly record: FuzzStreamRecord;
  readonly #call: ExtProcCall;
  readonly #book: FuzzBook;
  readonly #logger: Logger;
  readonly #onClosed: (s: FuzzSession) => void;
  #script: FuzzScript | undefined;
  /** Messages with their arrival time (the oracle times answers from arrival, not from when a sleeping turn gets to them). */
  #queue: Array<{ m: ProcessingRequest | Undecodable; t: number }> = [];
  #busy = false;
  #index = 0;
  #halfClosed = false;
  #ended = false;
  #hung = false;
  readonly #sleeper = new StreamSleeper();
  #fullDuplex: boolean;

  constructor(call: ExtProcCall, id: number, book: FuzzBook, logger: Logger, onClosed: (s: FuzzSession) => void) {
    this.#call = call;
    this.#book = book;
    this.#logger = logger;
    this.#onClosed = onClosed;
    this.#fullDuplex = book.fullDuplex;
    this.record = { id, pick: book.defaultPick(), openedAt: performance.now(), events: [], done: false };
    book.opened(this.record);
    call.on('message', (m: ProcessingRequest | Undecodable) => {
      if (this.#ended) return;
      this.#queue.push({ m, t: this.#t() });
      void this.#drain();
    });
    call.on('halfClose', () => {
      this.#halfClosed = true;
      void this.#drain();
    });
    call.on('cancelled', () => this.#finish('cancelled'));
    call.on('refused', () => this.#finish('by-mock'));
  }

  #t(): number {
    return Math.round((performance.now() - this.record.openedAt) * 1000) / 1000;
  }

  /** Ends what is left (the mock is stopping). */
  abort(): void {
    if (this.#ended) return;
    this.#call.end(14, 'mock EPP stopping');
    this.#finish('by-mock');
  }

  #finish(how: 'cancelled' | 'half-closed' | 'by-mock'): void {
    if (this.#ended) return;
    this.#ended = true;
    // Wakes a sleeping turn, which then stops (#ended).
    this.#sleeper.cancel();
    this.record.events.push({ t: this.#t(), end: how });
    this.record.done = true;
    this.#book.closed(this.record);
    this.#onClosed(this);
  }

  async #drain(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      // A hung stream still records what arrives (the oracle times the plane's give-up from it).
      while (this.#queue.length > 0 && !this.#ended) {
        const { m, t } = this.#queue.shift() as { m: ProcessingRequest | Undecodable; t: number };
        await this.#onMessage(m, t);
      }
    } catch (e) {
      this.#logger.error({ err: e, stream: this.record.id }, 'fuzz session internal error');
      if (!this.#ended) {
        this.#call.end(13, 'mock EPP internal error');
        this.#finish('by-mock');
      }
    } finally {
      this.#busy = false;
    }
    if (this.#halfClosed && this.#queue.length === 0 && !this.#ended && !this.#hung) {
      // The data plane is done sending and every message was handled: close with OK.
      this.#call.end(0);
      this.#finish('half-closed');
    }
  }

  async #onMessage(m: ProcessingRequest | Undecodable, arrived: number): Promise<void> {
    if ('undecodable' in m) {
      this.record.events.push({ t: arrived, undecodable: m.undecodable });
      return;
    }
    const phase = (m.request ?? PHASES.find((p) => (m as Record<string, unknown>)[p] != null)) as AnswerPhase | undefined;
    if (!phase) {
      this.record.events.push({ t: arrived, undecodable: 'ProcessingRequest with no phase set' });
      return;
    }
    if (m.protocol_config?.request_body_mode !== undefined && m.protocol_config.request_body_mode !== 0) {
      this.#fullDuplex = m.protocol_config.request_body_mode === 4;
    }
    let eos = false;
    let body = Buffer.alloc(0);
    if (phase === 'request_headers' || phase === 'response_headers') eos = m[phase]?.end_of_stream === true;
    if (phase === 'request_body' || phase === 'response_body') {
      const b = m[phase];
      body = b?.body ? Buffer.from(b.body) : body;
      eos = b?.end_of_stream === true || b?.end_of_stream_without_message === true;
    }
    this.record.events.push({ t: arrived, in: phase, eos, ...(body.length ? { bytes: body.length } : {}) });
    if (this.#hung) return;
    if (this.#index === 0 && phase === 'request_headers') {
      const key = headerMapToObject(m.request_headers?.headers)[FUZZ_CASE_HEADER];
      if (key !== undefined) this.record.key = key;
      const found = this.#book.lookup(key);
      if (found) {
        this.#script = found.script;
        this.record.pick = found.pick;
      }
    }
    const k = this.#index++;
    const script = this.#script;
    const ctx: EncodeContext = { triggerPhase: phase, pick: this.record.pick, triggerBody: body, triggerEos: eos };
    if (script && k < script.turns.length) {
      await this.#runTurn(script.turns[k] as FuzzEmit[], ctx);
      return;
    }
    this.record.restFrom ??= k;
    switch (script?.rest ?? 'valid') {
      case 'valid':
        await this.#runTurn([this.#validFor(phase)], ctx);
        return;
      case 'hang':
        await this.#runTurn([{ do: 'hang' }], ctx);
        return;
      case 'close':
        await this.#runTurn([{ do: 'end', code: 0 }], ctx);
        return;
      case 'reset':
        await this.#runTurn([{ do: 'reset' }], ctx);
    }
  }

  /** The strict real EPP's answer to a message of `phase` (body chunks echoed back in full duplex mode). */
  #validFor(phase: AnswerPhase): FuzzEmit {
    if ((phase === 'request_body' || phase === 'response_body') && this.#fullDuplex) return { ...VALID_ANSWER, endpoint: 'none', body: { kind: 'echo' } };
    if (phase !== 'request_headers') return { ...VALID_ANSWER, endpoint: 'none', clearRouteCache: false };
    return this.#script?.restAppend ? { ...VALID_ANSWER, endpointAppend: this.#script.restAppend } : VALID_ANSWER;
  }

  async #runTurn(emits: readonly FuzzEmit[], ctx: EncodeContext): Promise<void> {
    for (const e of emits) {
      if (this.#ended || this.#hung) return;
      await this.#emit(e, ctx);
    }
  }

  #note(e: FuzzEmit, phase?: AnswerPhase | 'none'): void {
    this.record.events.push({ t: this.#t(), out: e.do, ...(phase !== undefined ? { phase } : {}), emit: e });
  }

  async #emit(e: FuzzEmit, ctx: EncodeContext): Promise<void> {
    switch (e.do) {
      case 'answer': {
        const phase = e.phase === 'auto' ? ctx.triggerPhase : e.phase;
        this.#note(e, phase);
        this.#call.write(answerMessage(e, ctx));
        return;
      }
      case 'immediate':
        this.#note(e);
        this.#call.write(immediateMessage(e));
        this.#call.end(0);
        this.#finish('by-mock');
        return;
      case 'raw':
        this.#note(e);
        // A Buffer is written as the frame's payload as is (ext-proc-codec.ts).
        (this.#call as unknown as { write(m: unknown): void }).write(rawPayload(e, ctx));
        return;
      case 'delay':
        this.#note(e);
        await this.#sleeper.sleep(e.ms);
        return;
      case 'end':
        this.#note(e);
        this.#call.end(e.code, e.message ?? (e.code === 0 ? '' : 'eppkit fuzz'));
        this.#finish('by-mock');
        return;
      case 'reset':
        this.#note(e);
        this.#call.reset(h2.NGHTTP2_INTERNAL_ERROR);
        this.#finish('by-mock');
        return;
      case 'hang':
        this.#note(e);
        this.#hung = true;
        return;
    }
  }
}
