// Several data sets in one run: `--data_path a.json,b.jsonl` (files or Hub ids), each read with the shared field
// mapping unless `--data_columns` gives it its own (keyed by the path as written in --data_path), then concatenated,
// or interleaved by `--interleave_probs` (LLaMA-Factory's name): each next record comes from data set i with
// probability p_i (seeded), until the first data set runs out (datasets' interleave "first_exhausted").
// Not the reading of one file (dataset.ts).

import { Rng } from '../engine/random.ts';
import { UserError } from '../errors.ts';
import type { ConversationFields } from './conversation.ts';
import { DATA_FORMATS, loadDataset, type DataFormat, type DataRecord, type Dataset, type DatasetOptions } from './dataset.ts';

/** The paths of --data_path, split at commas. */
export function dataPaths(dataPath: string): string[] {
  const paths = dataPath.split(',').map((p) => p.trim());
  if (paths.some((p) => p === '')) throw new UserError(`--data_path "${dataPath}" has an empty entry: separate data sets with single commas`);
  return paths;
}

/** The keys a --data_columns entry (or the flags) may set, and where each goes in DatasetOptions. */
const COLUMN_KEYS: Record<string, (o: DatasetOptions, conv: ConversationFields, v: string) => void> = {
  data_format: (o, _c, v) => void (o.format = checkFormat(v)),
  instruction_field: (o, _c, v) => void (o.instructionField = v),
  input_field: (o, _c, v) => void (o.inputField = v),
  output_field: (o, _c, v) => void (o.outputField = v),
  text_field: (o, _c, v) => void (o.textField = v),
  messages_field: (_o, c, v) => void (c.messages = v),
  system_field: (_o, c, v) => void (c.system = v),
  history_field: (_o, c, v) => void (c.history = v),
  role_tag: (_o, c, v) => void (c.roleTag = v),
  content_tag: (_o, c, v) => void (c.contentTag = v),
  user_tag: (_o, c, v) => void (c.userTag = v),
  assistant_tag: (_o, c, v) => void (c.assistantTag = v),
  system_tag: (_o, c, v) => void (c.systemTag = v),
};
export const DATA_COLUMN_KEYS = Object.keys(COLUMN_KEYS);

function checkFormat(v: string): DataFormat {
  if (!(DATA_FORMATS as readonly string[]).includes(v)) throw new UserError(`data format "${v}" is not one of ${DATA_FORMATS.join(', ')}`);
  return v as DataFormat;
}

/** `base` with the given column keys (flag names: instruction_field, role_tag, …) applied; `where` names them in errors. */
export function withColumns(base: DatasetOptions, columns: Record<string, unknown>, where: string): DatasetOptions {
  const o: DatasetOptions = { ...base };
  const conv: ConversationFields = { ...base.conversation };
  for (const [key, value] of Object.entries(columns)) {
    const set = COLUMN_KEYS[key.replace(/-/g, '_')];
    if (!set) throw new UserError(`${where}: "${key}" is not a column setting (known: ${DATA_COLUMN_KEYS.join(', ')})`);
    if (typeof value !== 'string') throw new UserError(`${where}: "${key}" must be a string, got ${JSON.stringify(value)}`);
    set(o, conv, value);
  }
  return { ...o, conversation: conv };
}

/** --data_columns: a JSON (or, in --config, YAML) mapping of data path to its column settings. */
export function parseDataColumns(text: string | undefined, paths: readonly string[]): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  if (text === undefined || text === '') return out;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UserError(`--data_columns is not JSON (${(err as Error).message}): give {"<data path>": {"messages_field": …}, …}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UserError('--data_columns must map each data path to its column settings');
  for (const [path, columns] of Object.entries(value)) {
    if (!paths.includes(path)) throw new UserError(`--data_columns names "${path}", which is not in --data_path (${paths.join(', ')})`);
    if (typeof columns !== 'object' || columns === null || Array.isArray(columns)) throw new UserError(`--data_columns "${path}" must be a mapping of column settings`);
    out.set(path, columns as Record<string, unknown>);
  }
  return out;
}

/** --interleave_probs: one probability per data set, summing to 1 (within 1e-6). */
export function parseInterleaveProbs(probs: readonly number[], count: number): number[] {
  if (probs.length !== count) throw new UserError(`--interleave_probs has ${probs.length} values for ${count} data sets in --data_path: give one per data set`);
  const sum = probs.reduce((a, b) => a + b, 0);
  if (probs.some((p) => !(p >= 0)) || Math.abs(sum - 1) > 1e-6) throw new UserError(`--interleave_probs ${probs.join(',')} must be probabilities (0 or more) summing to 1, not ${sum}`);
  return [...probs];
}

/** The records of the data sets: concatenated, or interleaved with `probs` (the file comment's rule). */
export function mixRecords(sets: readonly Dataset[], probs: readonly number[] | null, seed = 42): DataRecord[] {
  if (probs === null) return sets.flatMap((s) => s.records);
  const rng = new Rng(seed);
  const next = sets.map(() => 0);
  const out: DataRecord[] = [];
  for (;;) {
    let u = rng.next();
    let i = 0;
    while (i < sets.length - 1 && u >= probs[i]!) u -= probs[i++]!;
    if (next[i]! >= sets[i]!.records.length) return out;
    out.push(sets[i]!.records[next[i]!++]!);
  }
}

/** Reads every data set of --data_path; `resolve` turns a path or Hub id into local files (a Hub set may have several shards). */
export async function loadDataSources(
  dataPath: string, base: DatasetOptions, columnsText: string | undefined, resolve: (path: string) => Promise<string[]>,
): Promise<Dataset[]> {
  const paths = dataPaths(dataPath);
  const columns = parseDataColumns(columnsText, paths);
  const sets: Dataset[] = [];
  for (const path of paths) {
    const options = withColumns(base, columns.get(path) ?? {}, `--data_columns "${path}"`);
    const shards = await Promise.all((await resolve(path)).map((file) => loadDataset(file, options)));
    sets.push(shards.length === 1 ? shards[0]! : {
      path, format: shards[0]!.format, records: shards.flatMap((s) => s.records), skipped: shards.flatMap((s) => s.skipped), bad: shards.flatMap((s) => s.bad),
    });
  }
  return sets;
}
