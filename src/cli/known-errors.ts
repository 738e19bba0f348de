// The one line the CLI prints for an error it did not raise itself but knows: a system error (a path that is a
// folder, a busy port, a full disk, no permission) or an allocation too large for memory, each with what to do.
// Anything else is a bug, and gets its stack (null here). UserErrors and UsageErrors print as they are.

const SYSTEM: Record<string, [what: string, todo: string]> = {
  EISDIR: ['is a folder where a file was expected', 'pass the file itself (check file names inside index files too)'],
  ENOTDIR: ['goes through a file where a folder was expected', 'pass a path whose parents are folders'],
  EEXIST: ['already exists', 'pass another path, or remove it'],
  ENOENT: ['does not exist', 'check the path'],
  EACCES: ['cannot be accessed: permission denied', 'pass a path you may read (inputs) or write (outputs)'],
  EPERM: ['cannot be accessed: operation not permitted', 'pass a path you may read (inputs) or write (outputs)'],
  EROFS: ['is on a read-only file system', 'write to another folder'],
  EFBIG: ['would grow past the largest file this system allows (ulimit -f, or the file system\'s limit)', 'raise the limit or write to another disk'],
  ENOSPC: ['cannot be written: the disk is full', 'free some space or write to another disk'],
  EDQUOT: ['cannot be written: the disk quota is used up', 'free some space or write to another disk'],
  EMFILE: ['cannot be opened: too many open files', 'raise the limit (ulimit -n)'],
};

/** The message to print for `err`, or null for an unexpected error (print its stack). */
export function describeError(err: unknown): string | null {
  if (!(err instanceof Error)) return null;
  const e = err as NodeJS.ErrnoException & { port?: number; address?: string; dest?: string };
  if (e.code === 'EADDRINUSE') return `port ${e.port ?? ''} on ${e.address ?? 'this host'} is already in use (EADDRINUSE): pass another --port (--port 0 takes any free one), or stop what listens there`;
  if (e.code === 'EADDRNOTAVAIL') return `address ${e.address ?? ''} is not one of this machine's (EADDRNOTAVAIL): pass another --host`;
  const known = e.code ? SYSTEM[e.code] : undefined;
  if (known) {
    const where = e.path ? `${e.path}${e.dest ? ` → ${e.dest}` : ''}` : 'a path this command read or wrote';
    return `${where} ${known[0]} (${e.code}${e.syscall ? `, ${e.syscall}` : ''}): ${known[1]}`;
  }
  if (err instanceof RangeError && /Invalid typed array length|Array buffer allocation failed|Invalid array length|Invalid string length/.test(err.message)) {
    return `out of memory: a buffer larger than this process can allocate was asked for (${err.message}); ` +
      'a tensor or file is larger than this machine can hold, or its header claims a size it does not have';
  }
  return null;
}
