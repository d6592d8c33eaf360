// One load worker thread: a few HTTP/2 connections, raw gRPC framing (no grpc-js: the
// client must not be the bottleneck), one ext_proc stream per simulated request.
// Request frames are encoded once; answers are counted by their gRPC frame headers.
import { connect, constants as h2, type ClientHttp2Session } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { parentPort, workerData } from 'node:worker_threads';
import { GrpcFrameDecoder } from '../../core/grpc-frame.ts';
import { runExecutor, type ExecutorPlan, type Outcome } from '../../core/load-executor.ts';
import type { Tally } from '../../core/load-tally.ts';
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

export async function runWorker(cfg: WorkerConfig, onProgress: (streams: number) => void = () => {}): Promise<Tally> {
  const sessions: ClientHttp2Session[] = [];
  for (let i = 0; i < cfg.connections; i++) sessions.push(await openSession(cfg));
  const payload = Buffer.from(cfg.payload);
  const headers = {
    [h2.HTTP2_HEADER_METHOD]: 'POST',
    [h2.HTTP2_HEADER_PATH]: EXT_PROC_METHOD_PATH,
    [h2.HTTP2_HEADER_SCHEME]: cfg.tlsCa ? 'https' : 'http',
    'content-type': 'application/grpc',
    te: 'trailers',
  };
  let rr = 0;

  /** One ext_proc stream (the protocol half of an iteration); resolves when it has closed. */
  const one = (): Promise<Outcome> =>
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
        if (tooLarge) resolve({ error: 'answer over the size limit' });
        else if (status !== '0') resolve({ error: status === undefined ? `closed rst=${req.rstCode}` : `grpc-status ${status}` });
        else if (doneAt === 0) resolve({ error: `only ${answers} answers` });
        else resolve({ doneAt });
      });
      req.end(payload);
    });

  // The executor decides when streams start and which count; a rate here is a constant arrival rate.
  const plan: ExecutorPlan = {
    executor: cfg.rate === undefined ? 'constant-vus' : 'constant-arrival-rate',
    slots: cfg.concurrency,
    warmupMs: cfg.warmupMs,
    durationMs: cfg.durationMs,
    timeoutMs: cfg.timeoutMs,
    onProgress,
  };
  if (cfg.rate !== undefined) plan.rate = cfg.rate;
  if (cfg.maxStreams !== undefined) plan.maxIterations = cfg.maxStreams;
  const out = await runExecutor(plan, one);
  for (const s of sessions) s.close();
  return out;
}

if (parentPort && workerData?.eppkitExtProcLoad) {
  const port = parentPort;
  runWorker(workerData.config as WorkerConfig, (streams) => port.postMessage({ progress: streams })).then(
    (r) => port.postMessage({ ok: true, result: r }),
    (e: unknown) => port.postMessage({ ok: false, error: String((e as Error)?.message ?? e) }),
  );
}
