// Request bodies of a scenario step: inline text or JSON, a file next to the scenario, or N
// seeded pseudo-random bytes (the same bytes for the same seed, on every machine).
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { EppkitError } from '../../core/errors.ts';
import type { RequestStep } from '../scenarios/scenario-schema.ts';

export interface PreparedBody {
  bytes: Buffer;
  sha256: string;
  contentType?: string;
}

/** xorshift32 stream: fast enough for 8 MiB, deterministic per seed. */
export function seededBytes(size: number, seed: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let x = (seed | 0) || 0x9e3779b9;
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeInt32LE(x | 0, i);
  }
  for (; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
  return buf;
}

export function sha256Hex(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

/**
 * An OpenAI chat completion body of exactly `size` bytes (at least its skeleton): one user
 * message padded with text, `model` first or last (as SDKs that serialize `messages` first do),
 * or absent. For body-based routing over large bodies (nginx temp files).
 */
export function chatBody(size: number, model: string | undefined, modelLast: boolean): Buffer {
  const m = model === undefined ? '' : JSON.stringify(model);
  const head = m && !modelLast ? `{"model":${m},"messages":[{"role":"user","content":"` : '{"messages":[{"role":"user","content":"';
  const tail = m && modelLast ? `"}],"model":${m}}` : '"}]}';
  const pad = Math.max(0, size - Buffer.byteLength(head) - Buffer.byteLength(tail));
  const words = 'the quick brown fox jumps over the lazy dog ';
  return Buffer.from(head + words.repeat(Math.ceil(pad / words.length)).slice(0, pad) + tail, 'utf8');
}

export function prepareBody(body: RequestStep['request']['body'], scenarioDir: string, resolveTpl: (s: string) => string): PreparedBody | undefined {
  if (body === undefined) return undefined;
  let bytes: Buffer;
  let contentType: string | undefined;
  if ('text' in body) {
    bytes = Buffer.from(resolveTpl(body.text), 'utf8');
    contentType = 'text/plain';
  } else if ('json' in body) {
    bytes = Buffer.from(resolveTpl(JSON.stringify(body.json)), 'utf8');
    contentType = 'application/json';
  } else if ('file' in body) {
    const f = resolve(scenarioDir, body.file);
    try {
      bytes = readFileSync(f);
    } catch (e) {
      throw new EppkitError('EPPKIT_CONFIG_UNREADABLE', { source: f, reason: (e as NodeJS.ErrnoException).code ?? String(e) });
    }
  } else if ('chat' in body) {
    bytes = chatBody(body.chat.size, body.chat.model, body.chat.modelLast);
    contentType = 'application/json';
  } else {
    bytes = seededBytes(body.random.size, body.random.seed);
    contentType = 'application/octet-stream';
  }
  const out: PreparedBody = { bytes, sha256: sha256Hex(bytes) };
  if (contentType) out.contentType = contentType;
  return out;
}
