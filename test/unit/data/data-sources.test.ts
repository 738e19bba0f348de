// Several data sets in one run: --data_path a,b with per-set column settings (--data_columns, also from --config),
// concatenated or interleaved by --interleave_probs (seeded; stops when the first set runs out), and the errors
// for settings that do not fit.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { optionsFromArgv } from '../../../src/cli/finetune.ts';
import type { DataRecord, Dataset } from '../../../src/data/dataset.ts';
import { loadDataSources, mixRecords, parseInterleaveProbs } from '../../../src/data/data-sources.ts';
import { UserError } from '../../../src/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'data-sources-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const local = async (p: string) => [p];

const alpaca = join(dir, 'a.json');
writeFileSync(alpaca, JSON.stringify([{ instruction: 'i0', output: 'o0' }, { instruction: 'i1', output: 'o1' }]));
const dialogs = join(dir, 'b.jsonl');
writeFileSync(dialogs, [{ dialog: [{ speaker: 'client', text: 'q' }, { speaker: 'agent', text: 'r' }] }].map((r) => JSON.stringify(r)).join('\n'));

describe('several data sets', () => {
  test('each with its own columns (--data_columns), concatenated in --data_path order', async () => {
    const columns = JSON.stringify({ [dialogs]: { data_format: 'sharegpt', messages_field: 'dialog', role_tag: 'speaker', content_tag: 'text', user_tag: 'client', assistant_tag: 'agent' } });
    const sets = await loadDataSources(`${alpaca},${dialogs}`, {}, columns, local);
    assert.deepEqual(sets.map((s) => [s.format, s.records.length]), [['alpaca', 2], ['sharegpt', 1]]);
    const all = mixRecords(sets, null);
    assert.deepEqual(all.map((r) => r.kind), ['instruction', 'instruction', 'conversation']);
    assert.deepEqual(all[2]!.kind === 'conversation' && all[2]!.messages, [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'r' }]);
  });

  test('--data_columns from a YAML --config reaches the options as JSON', () => {
    const config = join(dir, 'run.yaml');
    writeFileSync(config, `data_path: ${alpaca},${dialogs}\ninterleave_probs: [0.5, 0.5]\ndata_columns:\n  ${dialogs}:\n    messages_field: dialog\n`);
    const o = optionsFromArgv(['--config', config]);
    assert.deepEqual(JSON.parse(o.dataColumns!), { [dialogs]: { messages_field: 'dialog' } });
    assert.deepEqual(o.interleaveProbs, [0.5, 0.5]);
  });

  test('bad settings name what is wrong', async () => {
    await assert.rejects(loadDataSources(`${alpaca},,${dialogs}`, {}, undefined, local), /--data_path .* has an empty entry/);
    await assert.rejects(loadDataSources(alpaca, {}, JSON.stringify({ 'other.json': {} }), local), /--data_columns names "other\.json", which is not in --data_path/);
    await assert.rejects(loadDataSources(alpaca, {}, JSON.stringify({ [alpaca]: { colour: 'x' } }), local), /"colour" is not a column setting/);
    assert.throws(() => parseInterleaveProbs([0.5], 2), (e: Error) => e instanceof UserError && /1 values for 2 data sets/.test(e.message));
    assert.throws(() => parseInterleaveProbs([0.5, 0.6], 2), /summing to 1/);
  });
});

describe('--interleave_probs', () => {
  const set = (name: string, n: number): Dataset => ({
    path: name, format: 'text', skipped: [], bad: [], records: Array.from({ length: n }, (_, i): DataRecord => ({ kind: 'text', text: `${name}${i}` })),
  });
  const texts = (records: DataRecord[]) => records.map((r) => (r.kind === 'text' ? r.text : ''));

  test('draws each next record by the probabilities, in each set\'s order, until the first set runs out; seeded', () => {
    const a = set('a', 3000);
    const b = set('b', 3000);
    const mixed = texts(mixRecords([a, b], [0.8, 0.2], 7));
    const fromA = mixed.filter((t) => t.startsWith('a'));
    const fromB = mixed.filter((t) => t.startsWith('b'));
    assert.equal(fromA.length, 3000, 'a (drawn 80% of the time) runs out first and ends the mix');
    assert.deepEqual(fromA, texts(a.records), 'a set\'s records keep their order');
    assert.deepEqual(fromB, texts(b.records).slice(0, fromB.length));
    const share = fromA.length / mixed.length;
    assert.ok(Math.abs(share - 0.8) < 0.02, `share of a ${share.toFixed(3)} ≈ 0.8 (binomial sd ~0.007 at this size)`);
    assert.deepEqual(texts(mixRecords([a, b], [0.8, 0.2], 7)), mixed, 'same seed, same mix');
    assert.notDeepEqual(texts(mixRecords([a, b], [0.8, 0.2], 8)), mixed);
  });

  test('a probability of 0 never draws from its set', () => {
    const mixed = texts(mixRecords([set('a', 50), set('b', 50)], [1, 0], 1));
    assert.deepEqual(mixed, texts(set('a', 50).records));
  });
});
