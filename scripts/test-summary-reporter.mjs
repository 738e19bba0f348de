// A node:test reporter for scripts/run-tests.mjs: skipped tests counted by reason, and the tests that were
// still running in a file that timed out. Writes TAP comment lines, after node's own report, not instead of it.

export default async function* summary(source) {
  const skips = new Map(); // reason -> count
  const running = new Map(); // file -> Map(key -> { nesting, name }): dequeued and not yet complete
  const timedOut = [];
  for await (const { type, data } of source) {
    const inFile = data?.file && (running.get(data.file) ?? running.set(data.file, new Map()).get(data.file));
    const key = `${data?.nesting}:${data?.line}:${data?.column}:${data?.name}`;
    if (type === 'test:dequeue' && data.name !== data.file) inFile?.set(key, { nesting: data.nesting, name: data.name });
    if (type === 'test:complete' || type === 'test:pass' || type === 'test:fail') inFile?.delete(key);
    if ((type === 'test:pass' || type === 'test:fail') && data.skip !== undefined) {
      const reason = data.skip === true ? '(no reason given)' : data.skip;
      skips.set(reason, (skips.get(reason) ?? 0) + 1);
    }
    if (type === 'test:fail' && data.name === data.file && data.details?.error?.failureType === 'testTimeoutFailure') {
      const names = [...(inFile?.values() ?? [])].sort((a, b) => a.nesting - b.nesting).map((t) => t.name);
      timedOut.push(`# timed out: ${data.file}${names.length ? ` while running: ${names.join(' > ')}` : ''}`);
    }
  }
  const total = [...skips.values()].reduce((a, b) => a + b, 0);
  const lines = [`# skipped by reason (${total} in all):`];
  for (const [reason, n] of [...skips].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))) lines.push(`#   ${String(n).padStart(4)}  ${reason}`);
  yield [...lines, ...timedOut].join('\n') + '\n';
}
