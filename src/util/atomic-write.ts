// Writing an output file so that it is either complete or absent: write `<name>.tmp-<pid>-<random>` in the
// same folder, fsync, rename over the final name; on any error the temporary file is removed.
// Not a general file API: every output of the toolkit goes through here.

import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

export type Chunks = Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/** Write `data` (bytes or UTF-8 text) to `path` atomically. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await writeChunksAtomic(path, [typeof data === 'string' ? Buffer.from(data, 'utf8') : data]);
}

/** Write the chunks in order to `path` atomically; each chunk is written as soon as it is produced. */
export async function writeChunksAtomic(path: string, chunks: Chunks): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let handle: FileHandle | undefined = await open(tmp, 'wx');
  try {
    const small = new SmallChunks();
    for await (const chunk of chunks) {
      if (chunk.byteLength >= SMALL) {
        await writeAll(handle, small.take());
        await writeAll(handle, chunk);
      } else if (small.add(chunk) >= SMALL) {
        await writeAll(handle, small.take());
      }
    }
    await writeAll(handle, small.take());
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmp, path);
  } catch (err) {
    await handle?.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
  await syncFolder(dirname(path));
}

const SMALL = 1 << 20;

/** Small chunks (headers, norms) are gathered into one write instead of a system call each. */
class SmallChunks {
  private parts: Uint8Array[] = [];
  private bytes = 0;

  add(chunk: Uint8Array): number {
    this.parts.push(chunk);
    return (this.bytes += chunk.byteLength);
  }

  take(): Uint8Array {
    const joined = Buffer.concat(this.parts);
    this.parts = [];
    this.bytes = 0;
    return joined;
  }
}

async function writeAll(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  for (let done = 0; done < chunk.byteLength; ) {
    const { bytesWritten } = await handle.write(chunk, done, chunk.byteLength - done);
    done += bytesWritten;
  }
}

/** Make the rename durable; folders cannot be opened for sync on every platform, and that is fine. */
async function syncFolder(folder: string): Promise<void> {
  const dir = await open(folder, 'r').catch(() => undefined);
  await dir?.sync().catch(() => {});
  await dir?.close();
}
