// loadDataset: JSON arrays and JSON Lines (streamed), column mapping, raw text, pre-tokenized rows,
// and errors that name the file, the record, the line and what is wrong.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { UserError } from '../../../src/errors.ts';
import { loadDataset, type DataRecord, type DatasetOptions } from '../../../src/data/dataset.ts';

const root = mkdtempSync(join(tmpdir(), 'dataset-'));
after(() => rmSync(root, { recursive: true, force: true }));
let files = 0;

function file(name: string, content: string): string {
  const path = join(root, `${files++}-${name}`);
  writeFileSync(path, content);
  return path;
}

async function rejects(path: string, pattern: RegExp, options?: DatasetOptions): Promise<void> {
  await assert.rejects(loadDataset(path, options), (e: Error) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${e.stack}`);
    assert.match(e.message, pattern);
    return true;
  });
}

/** Records without `where` (the file and record each came from, for later errors). */
const bare = (list: readonly DataRecord[]) => list.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'where')));

const records = [
  { instruction: 'Add.', input: '1 + 1', output: '2' },
  { instruction: 'Say hi.', input: '', output: 'Hi {there} "you" \\ ✓' },
  { instruction: 'No input field.', output: 'ok' },
  { instruction: 'Null input.', input: null, output: 'ok' },
];
const expected = [
  { kind: 'instruction', instruction: 'Add.', input: '1 + 1', output: '2' },
  { kind: 'instruction', instruction: 'Say hi.', input: '', output: 'Hi {there} "you" \\ ✓' },
  { kind: 'instruction', instruction: 'No input field.', input: '', output: 'ok' },
  { kind: 'instruction', instruction: 'Null input.', input: '', output: 'ok' },
];

describe('reading records', () => {
  test('a JSON array, pretty or compact, and JSON Lines give the same records', async () => {
    for (const content of [JSON.stringify(records, null, 2), JSON.stringify(records), '\uFEFF' + JSON.stringify(records), records.map((r) => JSON.stringify(r)).join('\n') + '\n\n']) {
      const dataset = await loadDataset(file('data.json', content));
      assert.equal(dataset.format, 'alpaca');
      assert.deepEqual(bare(dataset.records), expected);
      assert.deepEqual(dataset.skipped, []);
    }
  });

  test('records that straddle the 1 MiB read chunks come out whole', async () => {
    const big = Array.from({ length: 5 }, (_, i) => ({ instruction: `${i} {[\\"`.repeat(40_000) + 'é🦙', input: '', output: ']}'.repeat(30_000) }));
    const dataset = await loadDataset(file('big.json', JSON.stringify(big)));
    assert.deepEqual(bare(dataset.records), big.map((r) => ({ kind: 'instruction', ...r })));
  });

  test('column mapping reads data sets that name their fields otherwise', async () => {
    const path = file('mapped.jsonl', '{"content": "Summarize.", "context": "Long text.", "summary": "Short."}\n');
    const dataset = await loadDataset(path, { instructionField: 'content', inputField: 'context', outputField: 'summary' });
    assert.deepEqual(bare(dataset.records), [{ kind: 'instruction', instruction: 'Summarize.', input: 'Long text.', output: 'Short.' }]);
  });

  test('raw text: records with a text field, or a .txt file read paragraph by paragraph', async () => {
    const fromJson = await loadDataset(file('text.jsonl', '{"text": "One."}\n{"text": "Two."}\n'));
    assert.equal(fromJson.format, 'text');
    assert.deepEqual(fromJson.records, [{ kind: 'text', text: 'One.' }, { kind: 'text', text: 'Two.' }]);
    const mapped = await loadDataset(file('body.json', '[{"body": "B"}]'), { textField: 'body', format: 'text' });
    assert.deepEqual(mapped.records, [{ kind: 'text', text: 'B' }]);
    const txt = await loadDataset(file('book.txt', 'First line\nsecond line.\n\n\nNext paragraph.\r\n'));
    assert.deepEqual(txt.records, [{ kind: 'text', text: 'First line\nsecond line.' }, { kind: 'text', text: 'Next paragraph.' }]);
  });

  test('pre-tokenized rows, as inspect-data --dump_jsonl writes them', async () => {
    const dataset = await loadDataset(file('rows.jsonl', '{"input_ids": [1, 5, 6], "labels": [-100, 5, 6]}\n{"input_ids": [1, 7]}\n'));
    assert.equal(dataset.format, 'tokenized');
    assert.deepEqual(dataset.records, [
      { kind: 'tokenized', input_ids: [1, 5, 6], labels: [-100, 5, 6] },
      { kind: 'tokenized', input_ids: [1, 7], labels: [1, 7] },
    ]);
  });
});

describe('errors name the file, the record and the line', () => {
  test('text that is not JSON', async () => {
    await rejects(file('bad.jsonl', '{"instruction": "a", "output": "b"}\n\n{"instruction": "a", oops}\n'), /bad\.jsonl: line 3 \(record 1\) is not JSON/);
    await rejects(file('bad.json', '[\n {"instruction": "a", "output": "b"},\n {"instruction": tru}\n]'), /bad\.json: record 1 \(line 3\) is not valid JSON/);
    await rejects(file('trailing.json', '[{"instruction": "a", "output": "b"}] x'), /unexpected text after the closing "\]"/);
    await rejects(file('comma.json', '[{"instruction": "a", "output": "b"},]'), /expected a record, found "\]"/);
    await rejects(file('cut.json', '[{"instruction": "a", "output": "b"}, {"instruction": "a"'), /cut\.json: the JSON array ends early \(record 1 starting at line 1/);
  });

  test('records of the wrong shape', async () => {
    await rejects(file('array.json', '[{"instruction": "a", "output": "b"}, [1, 2]]'), /record 1 \(line 1\) is not a JSON object \(got an array\)/);
    await rejects(file('number.jsonl', '{"instruction": "a", "output": "b"}\n42\n'), /record 1 \(line 2\) is not a JSON object/);
    await rejects(file('nofield.jsonl', '{"instruction": "a", "output": "b"}\n{"instruction": "a", "response": "b"}\n'), /record 1 \(line 2\) has no "output" field \(its fields: instruction, response\); name yours with --output_field/);
    await rejects(file('unknown.jsonl', '{"question": "a", "answer": "b"}\n'), /record 0 \(line 1\) has neither "instruction" nor "text" \(its fields: question, answer\)/);
    await rejects(file('type.json', '[{"instruction": "a", "input": 3, "output": "b"}]'), /record 0 \(line 1\): "input" must be a string, got number/);
    await rejects(file('rows.jsonl', '{"input_ids": [1, 2], "labels": [1]}\n'), /"labels" must be an array of token ids or -100, as long as "input_ids" \(2\)/);
  });

  test('empty responses fail unless skipped, listing the records; skipping reports which were left out', async () => {
    const content = JSON.stringify([{ instruction: 'a', output: 'b' }, { instruction: 'a', output: '' }, { instruction: 'a', output: '  ' }], null, 1);
    const path = file('empty-output.json', content);
    await rejects(path, /record 1 \(line 6\): "output" is empty \(2 such records: 1, 2\).*--skip_empty_outputs/);
    const warnings: string[] = [];
    const dataset = await loadDataset(path, { skipEmptyOutputs: true, warn: (m) => warnings.push(m) });
    assert.equal(dataset.records.length, 1);
    assert.deepEqual(dataset.skipped, [1, 2]);
    assert.deepEqual(warnings, [`${path}: left out 2 of 3 records whose "output" is empty (--skip_empty_outputs): records 1 (line 6), 2 (line 10)`]);
  });

  test('empty data sets and missing files', async () => {
    await rejects(file('empty.json', '[]'), /empty\.json holds no records/);
    await rejects(file('empty.jsonl', '\n\n'), /empty\.jsonl holds no records/);
    await rejects(file('blank.txt', '\n \n'), /blank\.txt holds no records/);
    await rejects(join(root, 'nope.json'), /--data_path .*nope\.json does not exist/);
    await rejects(root, /is a folder/);
  });
});

test('a 50,000-record, ~40 MB JSON file loads in seconds (loose bound: 20 s)', async () => {
  const output = 'A response of some length, with "quotes", {braces} and unicode: naïve café ✓. '.repeat(9);
  const lines = Array.from({ length: 50_000 }, (_, i) => JSON.stringify({ instruction: `Instruction number ${i}.`, input: i % 3 ? '' : 'some input', output }));
  const path = file('large.json', `[\n${lines.join(',\n')}\n]\n`);
  const start = performance.now();
  const dataset = await loadDataset(path);
  const seconds = (performance.now() - start) / 1000;
  assert.equal(dataset.records.length, 50_000);
  assert.deepEqual(bare([dataset.records[49_999]!])[0], { kind: 'instruction', instruction: 'Instruction number 49999.', input: '', output });
  console.log(`loaded 50,000 records in ${seconds.toFixed(2)} s`);
  assert.ok(seconds < 20, `took ${seconds.toFixed(1)} s`);
});

describe('long records and bytes that are not UTF-8', () => {
  const line = (text: string) => JSON.stringify({ instruction: 'Copy.', input: text, output: 'ok' });

  test('a line past the record bound is an error naming the file and the line, in every layout', async () => {
    const long = 'x'.repeat(5000);
    const jsonl = file('long.jsonl', `${line('a')}\n${line('b')}\n${line(long)}\n`);
    await rejects(jsonl, /long\.jsonl: line 3 is longer than 4096 bytes/, { maxRecordBytes: 4096 });
    const array = file('long.json', `[${line('a')},\n${line(long)}]`);
    await rejects(array, /long\.json: record 1 \(line 2\) is longer than 4096 bytes/, { maxRecordBytes: 4096 });
    const text = file('long.txt', `para\n\n${long}\n`);
    await rejects(text, /long\.txt: line 3 is longer than 4096 bytes/, { maxRecordBytes: 4096 });
    assert.equal((await loadDataset(jsonl, { maxRecordBytes: 8192 })).records.length, 3);
  });

  test('a line with no end that outgrows the bound stops reading at the bound (chunks of 1 MiB)', async () => {
    await rejects(file('endless.jsonl', 'y'.repeat(3 << 20)), /endless\.jsonl: line 1 is longer than 2097152 bytes/, { maxRecordBytes: 2 << 20 });
  });

  test('bytes that are not UTF-8 are counted and reported with the first line; valid text gives no warning', async () => {
    const bad = Buffer.concat([Buffer.from(`${line('fine é')}\n{"instruction": "caf`), Buffer.from([0xe9, 0xff]), Buffer.from('", "output": "x"}\n{"instruction": "'), Buffer.from([0xc3]), Buffer.from('", "output": "y"}\n')]);
    for (const name of ['bad.jsonl', 'bad.txt']) {
      const path = join(root, `${files++}-${name}`);
      writeFileSync(path, bad);
      const warnings: string[] = [];
      await loadDataset(path, { warn: (m) => warnings.push(m) });
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, new RegExp(`${name} holds 3 bytes that are not UTF-8 \\(the first on line 2\\)`));
    }
    const warnings: string[] = [];
    await loadDataset(file('good.jsonl', `${line('é 🦙 \uFFFD')}\n`), { warn: (m) => warnings.push(m) });
    assert.deepEqual(warnings, []);
  });
});
