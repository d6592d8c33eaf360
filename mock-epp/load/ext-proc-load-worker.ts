// One load worker thread: a few HTTP/2 connections, raw gRPC framing (no grpc-js: the
// client must not be the bottleneck), one ext_proc stream per simulated request.
// Request frames are encoded once; answers are counted by their gRPC frame headers.
import { connect, constants as h2, type ClientHttp2Session } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { parentPort, workerData } from 'node:worker_threads';
import { createHistogram, encodeHistogram, recordMicros } from '../../core/latency-histogram.ts';
import { GrpcFrameDecoder } from '../../core/grpc-frame.ts';
import { EXT_PROC_METHOD_PATH } from '../../core/proto.ts';

/** Largest answer a load stream accepts (the bench answers are small; this bounds a broken server). */
const ANSWER_LIMIT_BYTES = 64 * 1024 * 1024;

export interface WorkerConfig {
  target: string;
  tlsCa?: string;
  connections: number;
  concurrency: number;
  /** Streams per second for this worker; undefined = closed loop (as fast as the slots allow). */
  rate?: number;
  durationMs: number;
  /** Stop after this many streams (this worker's share); undefined = duration only. */
  maxStreams?: number;
  payload: Uint8Array;
  /** Answers expected per stream before it counts as served. */
  expectedAnswers: number;
  timeoutMs: number;
  warmupMs: number;
}

export interface WorkerResult {
  /** Streams closed in total, and those started after the warm-up (the measured ones). */
  streams: number;
  measured: number;
  errors: Record<string, number>;
  histogram: string;
  elapsedMs: number;
}

async function openSession(cfg: WorkerConfig): Promise<ClientHttp2Session> {
  const url = `${cfg.tlsCa ? 'https' : 'http'}://${cfg.target}`;
  const opts = cfg.tlsCa
    ? { createConnection: () => tlsConnect({ host: cfg.target.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''), port: Number(cfg.target.split(':').pop()), ca: cfg.tlsCa, ALPNProtocols: ['h2'], servername: 'localhost' }) }
    : {};
  const s = connect(url, { ...opts, settings: { initialWindowSize: 4 * 1024 * 1024 } });
  s.setMaxListeners(0);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('error', reject);
  });
  s.on('error', () => {});
  return s;
}

export async function runWorker(cfg: WorkerConfig, onProgress: (streams: number) => void = () => {}): Promise<WorkerResult> {
  const sessions: ClientHttp2Session[] = [];
  for (let i = 0; i < cfg.connections; i++) sessions.push(await openSession(cfg));
  const hist = createHistogram();
  const errors: Record<string, number> = {};
  const err = (k: string) => (errors[k] = (errors[k] ?? 0) + 1);
  const payload = Buffer.from(cfg.payload);
  const headers = {
    [h2.HTTP2_HEADER_METHOD]: 'POST',
    [h2.HTTP2_HEADER_PATH]: EXT_PROC_METHOD_PATH,
    [h2.HTTP2_HEADER_SCHEME]: cfg.tlsCa ? 'https' : 'http',
    'content-type': 'application/grpc',
    te: 'trailers',
  };
  let streams = 0;
  let measured = 0;
  let started = 0;
  let rr = 0;
  const t0 = performance.now();
  const recordFrom = t0 + cfg.warmupMs;
  const deadline = t0 + cfg.warmupMs + cfg.durationMs;
  const maxStreams = cfg.maxStreams ?? Number.POSITIVE_INFINITY;
  const progress = setInterval(() => onProgress(streams), 500);

  /** One ext_proc stream; resolves when it has closed. `intended` is when it should have started (rate mode). */
  const one = (intended: number): Promise<void> =>
    new Promise((resolve) => {
      const session = sessions[rr++ % sessions.length] as ClientHttp2Session;
      const req = session.request(headers);
      let answers = 0;
      // Answers are only counted; the limit keeps a broken server from growing this worker.
      const frames = new GrpcFrameDecoder({ maxMessageBytes: ANSWER_LIMIT_BYTES });
      let tooLarge = false;
      let doneAt = 0;
      let status: string | undefined;
      const timer = setTimeout(() => req.close(h2.NGHTTP2_CANCEL), cfg.timeoutMs);
      req.on('data', (chunk: Buffer) => {
        frames.push(chunk);
        for (let f = frames.next(); f !== undefined; f = frames.next()) {
          if (f.kind === 'too-large') {
            tooLarge = true;
            req.close(h2.NGHTTP2_CANCEL);
            return;
          }
          answers++;
        }
        if (answers >= cfg.expectedAnswers && doneAt === 0) doneAt = performance.now();
      });
      req.on('response', (h) => {
        if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
      });
      req.on('trailers', (h) => {
        if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
      });
      req.on('error', () => {});
      req.on('close', () => {
        clearTimeout(timer);
        streams++;
        if (intended >= recordFrom) measured++;
        if (tooLarge) err('answer over the size limit');
        else if (status !== '0') err(status === undefined ? `closed rst=${req.rstCode}` : `grpc-status ${status}`);
        else if (doneAt === 0) err(`only ${answers} answers`);
        else if (intended >= recordFrom) recordMicros(hist, (doneAt - intended) * 1000);
        resolve();
      });
      req.end(payload);
    });

  if (cfg.rate === undefined) {
    // Closed loop: `concurrency` slots, each starting its next stream when the last one closed.
    const slot = async () => {
      while (performance.now() < deadline && started < maxStreams) {
        started++;
        await one(performance.now());
      }
    };
    await Promise.all(Array.from({ length: cfg.concurrency }, slot));
  } else {
    // Open loop at a constant arrival rate; latency counts from the intended start (no coordinated omission).
    const interval = 1000 / cfg.rate;
    const inflight = new Set<Promise<void>>();
    let next = performance.now();
    while (performance.now() < deadline && started < maxStreams) {
      const now = performance.now();
      while (next <= now && started < maxStreams) {
        if (inflight.size >= cfg.concurrency) {
          err('client-concurrency-limit');
          next += interval;
          continue;
        }
        started++;
        const p = one(next).then(() => {
          inflight.delete(p);
        });
        inflight.add(p);
        next += interval;
      }
      await new Promise((r) => setTimeout(r, Math.max(0, Math.min(5, next - performance.now()))));
    }
    await Promise.all(inflight);
  }
  clearInterval(progress);
  const elapsedMs = Math.max(0, performance.now() - recordFrom);
  for (const s of sessions) s.close();
  const out: WorkerResult = { streams, measured, errors, histogram: encodeHistogram(hist), elapsedMs };
  hist.destroy();
  return out;
}

if (parentPort && workerData?.eppkitExtProcLoad) {
  const port = parentPort;
  runWorker(workerData.config as WorkerConfig, (streams) => port.postMessage({ progress: streams })).then(
    (r) => port.postMessage({ ok: true, result: r }),
    (e: unknown) => port.postMessage({ ok: false, error: String((e as Error)?.message ?? e) }),
  );
}
