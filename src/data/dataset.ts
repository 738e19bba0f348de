// Loads a data set file (.json, .jsonl, .txt or .parquet) into validated records: Alpaca-style instruction records
// (with column mapping, LLaMA-Factory's system and history), ShareGPT / OpenAI conversations, raw text for
// language-model training, or pre-tokenized rows. Not tokenization of prompts.

import { existsSync, statSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { alpacaChatFields, BadRecord, conversationMessages, type AlpacaChatFields, type ChatMessage, type ConversationFields } from './conversation.ts';
import { forEachJsonRecord } from './json-records.ts';
import { forEachLine, Utf8Tally } from './lines.ts';
import { forEachParquetRecord } from './parquet.ts';

export type DataFormat = 'alpaca' | 'sharegpt' | 'openai' | 'text' | 'tokenized';
export const DATA_FORMATS: readonly DataFormat[] = ['alpaca', 'sharegpt', 'openai', 'text', 'tokenized'];

export interface InstructionRecord extends Partial<AlpacaChatFields> {
  kind: 'instruction';
  instruction: string;
  input: string;
  output: string;
  /** File and record, for errors found later (a template that refuses it). */
  where?: string;
}

export interface ConversationRecord {
  kind: 'conversation';
  messages: ChatMessage[];
  where: string;
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

export type DataRecord = InstructionRecord | ConversationRecord | TextRecord | TokenizedRecord;

export interface DatasetOptions {
  /** Default: from the file (.txt is text) or its first record's fields. */
  format?: DataFormat;
  instructionField?: string;
  inputField?: string;
  outputField?: string;
  textField?: string;
  /** Conversation layout: LLaMA-Factory's column and tag names. */
  conversation?: ConversationFields;
  /** Leave out records whose response is empty instead of failing (the original Alpaca data has some). */
  skipEmptyOutputs?: boolean;
  /** Leave out records that cannot be trained on (bad roles, empty answers, missing fields), counted, instead of failing. */
  skipBadRecords?: boolean;
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
  /** Records left out by skipBadRecords: where and why. */
  bad: string[];
}

interface Fields {
  instruction: string;
  input: string;
  output: string;
  text: string;
}

/**
 * Reads a .json (array), .jsonl or .parquet file of records, or a .txt file (one text record per paragraph).
 * Every problem is a UserError naming the file, the record and the line (or row).
 */
export async function loadDataset(path: string, options: DatasetOptions = {}): Promise<Dataset> {
  if (!existsSync(path)) {
    throw new UserError(`--data_path ${path} does not exist: pass a local .json, .jsonl, .parquet or .txt file, or a Hub data set id`);
  }
  if (statSync(path).isDirectory()) throw new UserError(`--data_path ${path} is a folder: pass the .json, .jsonl, .parquet or .txt file itself`);
  const fields: Fields = {
    instruction: options.instructionField ?? 'instruction',
    input: options.inputField ?? 'input',
    output: options.outputField ?? 'output',
    text: options.textField ?? 'text',
  };
  const records: DataRecord[] = [];
  const empty: { index: number; line: number }[] = [];
  const bad: string[] = [];
  let format = options.format;
  const tally = new Utf8Tally();
  const conv = options.conversation ?? {};
  const visit = (value: unknown, index: number, where: string, line: number) => {
    const record = asObject(value, where);
    format ??= sniffFormat(record, fields, conv, where);
    let converted: DataRecord;
    try {
      converted = toRecord(record, format, fields, conv, where);
    } catch (err) {
      if (!(err instanceof BadRecord || err instanceof UserError)) throw err;
      const reason = err instanceof BadRecord ? `${where}: ${err.message}` : err.message;
      if (!options.skipBadRecords) throw new UserError(`${reason}; fix the record, or pass --skip_bad_records to leave such records out`);
      bad.push(reason);
      return;
    }
    if (converted.kind === 'instruction' && converted.output.trim() === '') empty.push({ index, line });
    else records.push(converted);
  };
  if (path.endsWith('.txt')) {
    if (format !== undefined && format !== 'text') throw new UserError(`${path}: a .txt file holds raw text; it cannot be read as ${format} records`);
    format = 'text';
    await readParagraphs(path, tally, options.maxRecordBytes, (text) => records.push({ kind: 'text', text }));
  } else if (path.endsWith('.parquet')) {
    await forEachParquetRecord(path, (value, row) => visit(value, row, `${path}: row ${row}`, row));
  } else {
    await forEachJsonRecord(path, (value, at) => visit(value, at.index, `${path}: record ${at.index} (line ${at.line})`, at.line), { tally, maxRecordBytes: options.maxRecordBytes });
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
  if (bad.length > 0) warn(badRecordsWarning(path, bad, records.length + bad.length));
  if (records.length === 0) throw new UserError(`${path} holds no records: a data set needs at least one example`);
  return { path, format: format!, records, skipped: empty.map((at) => at.index), bad };
}

/** The --skip_bad_records report: how many were left out, and the first few reasons. */
export function badRecordsWarning(source: string, bad: readonly string[], total: number): string {
  const shown = bad.slice(0, 3).map((b) => `\n  ${b}`).join('');
  return `${source}: left out ${bad.length} of ${total} records that cannot be trained on (--skip_bad_records):${shown}${bad.length > 3 ? `\n  … and ${bad.length - 3} more` : ''}`;
}

function asObject(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UserError(`${where} is not a JSON object (got ${Array.isArray(value) ? 'an array' : JSON.stringify(value)})`);
  }
  return value as Record<string, unknown>;
}

function sniffFormat(record: Record<string, unknown>, fields: Fields, conv: ConversationFields, where: string): DataFormat {
  if ('input_ids' in record) return 'tokenized';
  const list = record[conv.messages ?? ('conversations' in record ? 'conversations' : 'messages')];
  if (Array.isArray(list)) return 'from' in Object(list[0]) ? 'sharegpt' : 'openai'; // ShareGPT's {from, value}, else OpenAI's {role, content}
  if (fields.instruction in record) return 'alpaca';
  if (fields.text in record) return 'text';
  throw new UserError(
    `${where} has neither "${fields.instruction}" nor "${fields.text}" (its fields: ${Object.keys(record).join(', ') || 'none'}): ` +
      'map your columns with --instruction_field/--input_field/--output_field, --messages_field for conversations, or --text_field for raw text',
  );
}

function toRecord(record: Record<string, unknown>, format: DataFormat, fields: Fields, conv: ConversationFields, where: string): DataRecord {
  switch (format) {
    case 'sharegpt':
    case 'openai':
      return { kind: 'conversation', messages: conversationMessages(record, format, conv), where };
    case 'alpaca': {
      const output = requireString(record, fields.output, where, '--output_field');
      const input = record[fields.input];
      if (input !== undefined && input !== null && typeof input !== 'string') {
        throw new UserError(`${where}: "${fields.input}" must be a string, got ${typeName(input)}`);
      }
      const instruction = requireString(record, fields.instruction, where, '--instruction_field');
      return { kind: 'instruction', instruction, input: input ?? '', output, ...alpacaChatFields(record, conv), where };
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
