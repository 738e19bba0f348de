// Loads a data set file into validated records: Alpaca-style instruction records (with column
// mapping), raw text for language-model training, or pre-tokenized rows. Not tokenization of prompts.

import { existsSync, statSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { forEachJsonRecord, type RecordPosition } from './json-records.ts';
import { forEachLine, Utf8Tally } from './lines.ts';

export type DataFormat = 'alpaca' | 'text' | 'tokenized';
export const DATA_FORMATS: readonly DataFormat[] = ['alpaca', 'text', 'tokenized'];

export interface InstructionRecord {
  kind: 'instruction';
  instruction: string;
  input: string;
  output: string;
}

export interface TextRecord {
  kind: 'text';
  text: string;
}

/** A row as `inspect-data --dump_jsonl` writes it; -100 labels are not trained. */
export interface TokenizedRecord {
  kind: 'tokenized';
  input_ids: number[];
  labels: number[];
}

export type DataRecord = InstructionRecord | TextRecord | TokenizedRecord;

export interface DatasetOptions {
  /** Default: from the file (.txt is text) or its first record's fields. */
  format?: DataFormat;
  instructionField?: string;
  inputField?: string;
  outputField?: string;
  textField?: string;
  /** Leave out records whose response is empty instead of failing (the original Alpaca data has some). */
  skipEmptyOutputs?: boolean;
  /** The longest record in bytes (default MAX_RECORD_BYTES, 64 MiB). */
  maxRecordBytes?: number;
  /** Where the warning about bytes that are not UTF-8 goes (default: stderr). */
  warn?: (message: string) => void;
}

export interface Dataset {
  path: string;
  format: DataFormat;
  records: DataRecord[];
  /** Indices (in the file) of records left out by skipEmptyOutputs. */
  skipped: number[];
}

interface Fields {
  instruction: string;
  input: string;
  output: string;
  text: string;
}

/**
 * Reads a .json (array) or .jsonl file of records, or a .txt file (one text record per paragraph).
 * Every problem is a UserError naming the file, the record and the line.
 */
export async function loadDataset(path: string, options: DatasetOptions = {}): Promise<Dataset> {
  if (!existsSync(path)) {
    throw new UserError(`--data_path ${path} does not exist: pass a local .json, .jsonl or .txt file (download hub data sets first)`);
  }
  if (statSync(path).isDirectory()) throw new UserError(`--data_path ${path} is a folder: pass the .json, .jsonl or .txt file itself`);
  const fields: Fields = {
    instruction: options.instructionField ?? 'instruction',
    input: options.inputField ?? 'input',
    output: options.outputField ?? 'output',
    text: options.textField ?? 'text',
  };
  const records: DataRecord[] = [];
  const empty: RecordPosition[] = [];
  let format = options.format;
  const tally = new Utf8Tally();
  if (path.endsWith('.txt')) {
    if (format !== undefined && format !== 'text') throw new UserError(`${path}: a .txt file holds raw text; it cannot be read as ${format} records`);
    format = 'text';
    await readParagraphs(path, tally, options.maxRecordBytes, (text) => records.push({ kind: 'text', text }));
  } else {
    await forEachJsonRecord(path, (value, at) => {
      const where = `${path}: record ${at.index} (line ${at.line})`;
      const record = asObject(value, where);
      format ??= sniffFormat(record, fields, where);
      const converted = toRecord(record, format, fields, where);
      if (converted.kind === 'instruction' && converted.output.trim() === '') empty.push(at);
      else records.push(converted);
    }, { tally, maxRecordBytes: options.maxRecordBytes });
  }
  const warn = options.warn ?? ((m) => process.stderr.write(`warning: ${m}\n`));
  const badUtf8 = tally.warning(path);
  if (badUtf8) warn(badUtf8);
  const list = empty.slice(0, 10).map((at) => at.index).join(', ') + (empty.length > 10 ? ', …' : '');
  if (empty.length > 0 && options.skipEmptyOutputs) {
    const lines = empty.slice(0, 10).map((at) => `${at.index} (line ${at.line})`).join(', ') + (empty.length > 10 ? ', …' : '');
    warn(`${path}: left out ${empty.length} of ${empty.length + records.length} records whose "${fields.output}" is empty (--skip_empty_outputs): record${empty.length > 1 ? 's' : ''} ${lines}`);
  }
  if (empty.length > 0 && !options.skipEmptyOutputs) {
    throw new UserError(
      `${path}: record ${empty[0]!.index} (line ${empty[0]!.line}): "${fields.output}" is empty (${empty.length === 1 ? 'the only such record' : `${empty.length} such records: ${list}`}); ` +
        `every example needs a response to train on: fix ${empty.length === 1 ? 'it' : 'them'}, or pass --skip_empty_outputs to leave ${empty.length === 1 ? 'it' : 'them'} out`,
    );
  }
  if (records.length === 0) throw new UserError(`${path} holds no records: a data set needs at least one example`);
  return { path, format: format!, records, skipped: empty.map((at) => at.index) };
}

function asObject(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UserError(`${where} is not a JSON object (got ${Array.isArray(value) ? 'an array' : JSON.stringify(value)})`);
  }
  return value as Record<string, unknown>;
}

function sniffFormat(record: Record<string, unknown>, fields: Fields, where: string): DataFormat {
  if ('input_ids' in record) return 'tokenized';
  if (fields.instruction in record) return 'alpaca';
  if (fields.text in record) return 'text';
  throw new UserError(
    `${where} has neither "${fields.instruction}" nor "${fields.text}" (its fields: ${Object.keys(record).join(', ') || 'none'}): ` +
      'map your columns with --instruction_field/--input_field/--output_field, or --text_field for raw text',
  );
}

function toRecord(record: Record<string, unknown>, format: DataFormat, fields: Fields, where: string): DataRecord {
  switch (format) {
    case 'alpaca': {
      const output = requireString(record, fields.output, where, '--output_field');
      const input = record[fields.input];
      if (input !== undefined && input !== null && typeof input !== 'string') {
        throw new UserError(`${where}: "${fields.input}" must be a string, got ${typeName(input)}`);
      }
      return { kind: 'instruction', instruction: requireString(record, fields.instruction, where, '--instruction_field'), input: input ?? '', output };
    }
    case 'text': {
      const text = requireString(record, fields.text, where, '--text_field');
      if (text.trim() === '') throw new UserError(`${where}: "${fields.text}" is empty`);
      return { kind: 'text', text };
    }
    case 'tokenized':
      return toTokenizedRecord(record, where);
  }
}

function toTokenizedRecord(record: Record<string, unknown>, where: string): TokenizedRecord {
  const inputIds = record.input_ids;
  if (!Array.isArray(inputIds) || inputIds.length === 0 || !inputIds.every((id) => Number.isInteger(id) && id >= 0)) {
    throw new UserError(`${where}: "input_ids" must be a non-empty array of token ids`);
  }
  const labels = record.labels ?? inputIds;
  if (!Array.isArray(labels) || labels.length !== inputIds.length || !labels.every((id) => Number.isInteger(id) && (id >= 0 || id === -100))) {
    throw new UserError(`${where}: "labels" must be an array of token ids or -100, as long as "input_ids" (${inputIds.length})`);
  }
  return { kind: 'tokenized', input_ids: inputIds as number[], labels: labels === inputIds ? [...inputIds] : (labels as number[]) };
}

function requireString(record: Record<string, unknown>, key: string, where: string, flag: string): string {
  const value = record[key];
  if (value === undefined) {
    throw new UserError(`${where} has no "${key}" field (its fields: ${Object.keys(record).join(', ') || 'none'}); name yours with ${flag}`);
  }
  if (typeof value !== 'string') throw new UserError(`${where}: "${key}" must be a string, got ${typeName(value)}`);
  return value;
}

function typeName(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

/** Raw text, one record per paragraph (paragraphs are separated by blank lines). */
async function readParagraphs(path: string, tally: Utf8Tally, maxBytes: number | undefined, visit: (text: string) => void): Promise<void> {
  let lines: string[] = [];
  const flush = () => {
    if (lines.length > 0) visit(lines.join('\n'));
    lines = [];
  };
  await forEachLine(path, tally, (line) => {
    if (line.trim() === '') flush();
    else lines.push(line);
  }, maxBytes);
  flush();
}
