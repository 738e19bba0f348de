// Queue positions for the page: while a request waits to join the running batch, its place in line (the
// scheduler's positionOf) is checked on the next turn of the event loop and then every POLL_MS, and told to a
// listener each time it changes. Not the scheduling (generate/scheduler.ts).

const POLL_MS = 200;

/** Tells `onPosition` the 1-based position from `positionOf` (0: not waiting) as it changes; returns the stop. */
export function watchQueuePosition(positionOf: () => number, onPosition: ((position: number) => void) | undefined): () => void {
  if (!onPosition) return () => {};
  let told = 0;
  const check = () => {
    const position = positionOf();
    if (position > 0 && position !== told) onPosition((told = position));
  };
  const first = setImmediate(check);
  const every = setInterval(check, POLL_MS);
  return () => {
    clearImmediate(first);
    clearInterval(every);
  };
}
