// A stream's sleeps (a rule's delay, a fuzz script's `delay` turn): a timer the stream's end
// cancels, waking the sleeper at once so nothing more is done for a stream that is gone.
export class StreamSleeper {
  #timer: NodeJS.Timeout | undefined;
  #wake: ((slept: boolean) => void) | undefined;
  #cancelled = false;

  /** Resolves true after `ms`, or false as soon as the stream ends (cancel()); false at once after that. */
  sleep(ms: number): Promise<boolean> {
    if (this.#cancelled) return Promise.resolve(false);
    // A stream handles its messages in order, so there is never more than one sleep; a second ends the first.
    this.#wake?.(false);
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#wake = undefined;
        resolve(true);
      }, ms);
    });
  }

  /** The stream ended: clears the timer and wakes the sleeper (with false). */
  cancel(): void {
    this.#cancelled = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const w = this.#wake;
    this.#wake = undefined;
    w?.(false);
  }
}
