// Reading a batch of token rows from JSON for `score`: {"input_ids": [[...]], "attention_mask"?: [[...]],
// "labels"?: [[...]]}, rows of equal length. Errors name the file, the field and the row.

import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import type { TokenBatch } from '../model/batch.ts';

function rows(value: unknown, field: string, path: string, B: number | null, T: number | null): Int32Array {
  if (!Array.isArray(value) || value.length === 0) throw new UserError(`${path}: "${field}" must be a non-empty list of rows (lists of integers)`);
  if (B !== null && value.length !== B) throw new UserError(`${path}: "${field}" has ${value.length} rows but input_ids has ${B}`);
  const width = T ?? (Array.isArray(value[0]) ? value[0].length : 0);
  const out = new Int32Array(value.length * width);
  value.forEach((row: unknown, b) => {
    if (!Array.isArray(row) || row.length === 0) throw new UserError(`${path}: "${field}" row ${b} is not a non-empty list of integers`);
    if (row.length !== width) {
      throw new UserError(`${path}: "${field}" row ${b} has ${row.length} tokens, row 0 has ${width}: pad rows to one length and pass attention_mask`);
    }
    row.forEach((v: unknown, t) => {
      if (!Number.isInteger(v)) throw new UserError(`${path}: "${field}" row ${b} position ${t} is ${JSON.stringify(v)}, not an integer`);
      out[b * width + t] = v as number;
    });
  });
  return out;
}

export function readBatchFile(path: string): TokenBatch {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UserError(`--batch ${path} cannot be read as JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new UserError(`${path}: expected an object with "input_ids"`);
  const o = json as Record<string, unknown>;
  const inputIds = rows(o.input_ids, 'input_ids', path, null, null);
  const B = (o.input_ids as unknown[]).length;
  const T = inputIds.length / B;
  return {
    B,
    T,
    inputIds,
    attentionMask: o.attention_mask === undefined ? null : rows(o.attention_mask, 'attention_mask', path, B, T),
    labels: o.labels === undefined ? null : rows(o.labels, 'labels', path, B, T),
  };
}
