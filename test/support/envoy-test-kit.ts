// Shared by the Envoy and NGINX + NJS integration tests: availability gates (skip locally
// with the reason, fail under CI=true), HTTP calls that never hang a test, and echo backends.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EchoBackend, type StartedEchoBackend } from '../../harness/backends/echo-backend.ts';
import type { Availability, DataPlaneDriver, Runtime } from '../../harness/data-planes/data-plane-driver.ts';

export interface Gate {
  /** True: skip the suite (local run without the tool). */
  skip: boolean;
  availability: Availability;
}

/** Locally a missing tool skips with its reason; with CI=true the suite runs and its availability test fails. */
export async function gateFor(driver: DataPlaneDriver, runtime: Runtime = 'local'): Promise<Gate> {
  const availability = await driver.available(runtime);
  const ci = process.env.CI === 'true' || process.env.CI === '1';
  if (!availability.ok && !ci) {
    process.stderr.write(`[skip] ${driver.name} (${runtime}) tests: ${availability.reason}\n`);
  }
  return { skip: !availability.ok && !ci, availability };
}

export function workDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `eppkit-${prefix}-`));
}

export interface Reply {
  status: number;
  headers: Record<string, string>;
  text: string;
  /** The echo backend that answered (x-inference-pod), if one did. */
  pod?: string;
  /** sha256 of the body the backend received, when an echo backend answered. */
  bodySha256?: string;
  bodyBytes?: number;
  /** Headers the backend received. */
  receivedHeaders?: Record<string, string>;
}

/** One HTTP request; aborted after `timeoutMs` so a hung data plane fails the test instead of hanging it. */
export async function send(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string; timeoutMs?: number } = {},
): Promise<Reply> {
  const res = await fetch(url, {
    method: opts.method ?? (opts.body !== undefined ? 'POST' : 'GET'),
    headers: opts.headers,
    body: opts.body,
    signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
  });
  const text = await res.text();
  const headers: Record<string, string> = {};
  res.headers.forEach((v, k) => (headers[k] = v));
  const reply: Reply = { status: res.status, headers, text };
  if (headers['x-inference-pod']) reply.pod = headers['x-inference-pod'];
  if (headers['content-type']?.includes('json')) {
    try {
      const j = JSON.parse(text) as { request?: { bodySha256?: string; bodyBytes?: number; headers?: Record<string, string> } };
      if (j.request) {
        reply.bodySha256 = j.request.bodySha256;
        reply.bodyBytes = j.request.bodyBytes;
        reply.receivedHeaders = j.request.headers;
      }
    } catch {
      // not an echo backend's answer
    }
  }
  return reply;
}

export async function startBackends(...names: string[]): Promise<StartedEchoBackend[]> {
  return Promise.all(names.map((n) => new EchoBackend(n).start()));
}

/** A deterministic body of `bytes` bytes (not all one byte, so truncation or reordering shows in the hash). */
export function patternBody(bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}
