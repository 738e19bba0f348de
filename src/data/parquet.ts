// Reads the rows of a .parquet data file (as the Hub stores most data sets) as plain objects, one row group at a
// time, through hyparquet (pure JavaScript, no native code; snappy and uncompressed pages). Not record checking
// (dataset.ts). hyparquet is imported on first use, so loading JSON data does not load it.

import { UserError } from '../errors.ts';

/** Calls `visit` with every row of `path` as {column: value} (64-bit integers as numbers), in file order. */
export async function forEachParquetRecord(path: string, visit: (row: Record<string, unknown>, index: number) => void): Promise<void> {
  const { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } = await import('hyparquet');
  const file = await asyncBufferFromFile(path);
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (err) {
    throw new UserError(`${path} is not a readable Parquet file (${(err as Error).message}): it may be truncated; download it again`);
  }
  const columns = parquetSchema(metadata).children.map((c) => c.element.name);
  let index = 0;
  for (const group of metadata.row_groups) {
    const rowStart = index;
    const rowEnd = index + Number(group.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({ file, metadata, rowStart, rowEnd });
    } catch (err) {
      throw new UserError(`${path}: rows ${rowStart}-${rowEnd - 1} cannot be read (${(err as Error).message}; its columns: ${columns.join(', ')}): the file may be truncated or use a compression hyparquet does not read (snappy and none are read)`);
    }
    for (const row of rows) visit(plain(row) as Record<string, unknown>, index++);
  }
}

/** The row as JSON would give it: bigints as numbers, typed arrays as arrays. */
function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value) || ArrayBuffer.isView(value)) return Array.from(value as ArrayLike<unknown>, plain);
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}
