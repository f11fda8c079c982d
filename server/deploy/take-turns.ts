// Metadata work (stat, link, mkdir) on thousands of files is far quicker done
// synchronously than as thousands of round trips through libuv's thread pool,
// but must not hold the edge's one event loop for long: the loop is given a
// turn every few milliseconds.

/** Resolves at once, or on the next turn of the event loop once `budgetMs` of work has passed. */
export function makeYielder(budgetMs = 8): () => Promise<void> {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < budgetMs) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    since = performance.now();
  };
}
