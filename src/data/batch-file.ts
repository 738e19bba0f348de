// Reading a batch of token rows for `score`: JSON {"input_ids": [[...]], "attention_mask"?: [[...]],
// "labels"?: [[...]]} with rows of equal length, or JSON Lines of one row each, as `inspect-data --dump_jsonl`
// writes them ({"input_ids": [...], "labels": [...]}), right-padded here. Errors name the file, the field and the row.

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

/** JSON Lines rows as one batch: right-padded with id 0, attention_mask 0 and label -100 (as the trainer pads). */
function jsonlBatch(path: string, text: string): Record<string, unknown[]> {
  const rows = text.split('\n').flatMap((line, i) => {
    if (line.trim() === '') return [];
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch (err) {
      throw new UserError(`--batch ${path}: line ${i + 1} is not JSON: ${(err as Error).message}`);
    }
  });
  const T = Math.max(0, ...rows.map((r) => (Array.isArray(r.input_ids) ? r.input_ids.length : 0)));
  const padded = (v: unknown, fill: number) => (Array.isArray(v) ? [...v, ...Array(Math.max(0, T - v.length)).fill(fill)] : v);
  const ones = (ids: unknown) => (Array.isArray(ids) ? ids.map(() => 1) : ids);
  const batch: Record<string, unknown[]> = {
    input_ids: rows.map((r) => padded(r.input_ids, 0)),
    attention_mask: rows.map((r) => padded(r.attention_mask ?? ones(r.input_ids), 0)),
  };
  if (rows.some((r) => r.labels !== undefined)) batch.labels = rows.map((r) => padded(r.labels, -100));
  return batch;
}

export function readBatchFile(path: string): TokenBatch {
  let json: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    json = /\.jsonl$/i.test(path) ? jsonlBatch(path, text) : JSON.parse(text);
  } catch (err) {
    if (err instanceof UserError) throw err;
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
