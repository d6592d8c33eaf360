// Waiting on a condition instead of sleeping: tests on a busy shared machine wait for what they
// need (a stream open at the EPP, a count reached), never for a fixed time.

/** Polls `fn` until it returns true; throws naming `what` after `timeoutMs`. */
export async function eventually(fn: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    if (await fn()) return;
    if (Date.now() - t0 > timeoutMs) throw new Error(`not reached within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
