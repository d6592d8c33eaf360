// Which EPP journal entry belongs to which request of a scenario: every request the runner
// sends carries its own id in a header the data plane passes on to the EPP, and a failure shows
// the entry with that id, never "the last entry" (under concurrency, retries or a late stream
// of an earlier step, the last entry is another request's). Also the EPP's service time per
// stream, cancelled streams included.
import type { JournalEntry } from '../epp/mock-epp-process.ts';
import type { Mismatch } from './expectations.ts';
import type { ExchangeResult } from './http-exchange.ts';

/**
 * The id header. Not `x-eppkit-*`: that prefix is the mock EPP's directive namespace, and an id
 * must not look like a directive to it.
 */
export const REQUEST_ID_HEADER = 'eppkit-request-id';

/** Ids of one step's requests: `3.1`, `3.2`, ... (step 3), readable in a report. */
export function requestIds(stepNumber: number): () => string {
  let n = 0;
  return () => `${stepNumber}.${++n}`;
}

/** The request id the EPP saw on this stream, if the data plane passed the header on. */
export function requestIdOf(entry: JournalEntry): string | undefined {
  const h = entry.requestHeaders as Record<string, string> | undefined;
  return h?.[REQUEST_ID_HEADER];
}

/**
 * The request a step failure is about: the first one a mismatch names, else the step's only
 * request. Undefined when the failure is about the step as a whole (several requests, none
 * singled out).
 */
export function failingRequest(mismatches: readonly Mismatch[], results: readonly ExchangeResult[]): string | undefined {
  const named = mismatches.find((m) => m.request !== undefined)?.request;
  if (named !== undefined) return named;
  return results.length === 1 ? results[0]?.requestId : undefined;
}

/** The journal entry of one request, found by its id header (never by position or time). */
export function entryOfRequest(entries: readonly JournalEntry[], id: string): JournalEntry | undefined {
  return entries.find((e) => requestIdOf(e) === id);
}

/**
 * What the EPP spent on one stream: the service time of every answer, plus, for a message it
 * never answered (the plane cancelled the stream while the EPP delayed or hung), the time from
 * that message to the stream's end. Undefined for a stream that is still open or saw nothing.
 */
export function streamServiceTime(e: JournalEntry): number | undefined {
  const answers = (e.answers as Array<{ serviceTimeMs?: number }> | undefined) ?? [];
  const phases = (e.phases as Array<{ atMs?: number }> | undefined) ?? [];
  const answered = answers.reduce((a, x) => a + (x.serviceTimeMs ?? 0), 0);
  const duration = typeof e.durationMs === 'number' ? e.durationMs : undefined;
  if (phases.length > answers.length && duration !== undefined) {
    const last = phases[phases.length - 1]?.atMs ?? 0;
    return answered + Math.max(0, duration - last);
  }
  return answers.length > 0 ? answered : undefined;
}

/** A stream the data plane (or its client) cancelled before the EPP was done with it. */
export function isCancelled(e: JournalEntry): boolean {
  return (e.end as { how?: string } | undefined)?.how === 'client-cancelled';
}
