// Parquet data: local files (flat Alpaca columns across row groups, ShareGPT conversations as list<struct>), a file
// with no usable column or cut short is an error naming the file (and its columns), and Hub data sets stored as
// Parquet, from the main branch or the Hub's Parquet conversion, against a local Hub-shaped server. The fixtures
// are made by test/fixtures/parquet/make-parquet.mjs (hyparquet-writer), which lists what each holds.

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadDataset } from '../../../src/data/dataset.ts';
import { loadDataSources } from '../../../src/data/data-sources.ts';
import { dataFiles, resolveDataFiles } from '../../../src/hub/resolve.ts';
import { UserError } from '../../../src/errors.ts';
import { PROJECT_ROOT } from '../../helpers/shared.ts';

const FIXTURES = join(PROJECT_ROOT, 'test', 'fixtures', 'parquet');
const fixture = (name: string) => join(FIXTURES, name);
const work = mkdtempSync(join(tmpdir(), 'parquet-'));
after(() => rmSync(work, { recursive: true, force: true }));

describe('local .parquet files', () => {
  test('Alpaca columns, read across row groups in order, with the row named for errors', async () => {
    const d = await loadDataset(fixture('alpaca.parquet'));
    assert.equal(d.format, 'alpaca');
    assert.equal(d.records.length, 5);
    assert.deepEqual(d.records.map((r) => (r.kind === 'instruction' ? r.output : null)), [
      'Eat well, sleep enough, move every day.', 'Bonjour', '5', '长城是中国古代修建的防御工事。', 'Red',
    ]);
    assert.deepEqual(d.records[1], { kind: 'instruction', instruction: 'Translate to French.', input: 'Good morning', output: 'Bonjour', where: `${fixture('alpaca.parquet')}: row 1` });
  });

  test('ShareGPT conversations stored as a list of structs', async () => {
    const d = await loadDataset(fixture('sharegpt.parquet'));
    assert.equal(d.format, 'sharegpt');
    assert.deepEqual(d.records[1], {
      kind: 'conversation', where: `${fixture('sharegpt.parquet')}: row 1`,
      messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: '2+2?' }, { role: 'assistant', content: '4' }],
    });
  });

  test('no usable column: the error names the file and its columns', async () => {
    await assert.rejects(loadDataset(fixture('no-columns.parquet')), (e: Error) =>
      e instanceof UserError && e.message.includes(fixture('no-columns.parquet')) && /its fields: id, score/.test(e.message));
  });

  test('a file cut short: the error names the file and says it may be truncated', async () => {
    const whole = readFileSync(fixture('alpaca.parquet'));
    for (const keep of [whole.length - 40, 600, 10]) {
      const path = join(work, `cut-${keep}.parquet`);
      writeFileSync(path, whole.subarray(0, keep));
      await assert.rejects(loadDataset(path), (e: Error) => e instanceof UserError && e.message.startsWith(path) && /truncated/.test(e.message));
    }
  });
});

describe('Hub data sets stored as Parquet', () => {
  test('the train split\'s shards are chosen over other splits; JSON still wins when present', () => {
    const files = ['README.md', 'data/test-00000-of-00001.parquet', 'data/train-00001-of-00002.parquet', 'data/train-00000-of-00002.parquet'];
    assert.deepEqual(dataFiles('acme/x', files), ['data/train-00000-of-00002.parquet', 'data/train-00001-of-00002.parquet']);
    assert.deepEqual(dataFiles('acme/x', [...files, 'alpaca_data.json']), ['alpaca_data.json']);
    assert.deepEqual(dataFiles('acme/x', ['README.md', 'loader.py']), []);
  });

  test('a data set with no data files on main is read from the Hub\'s Parquet conversion (refs/convert/parquet)', async (t) => {
    const SHA = 'feed'.padEnd(40, '0');
    const body = readFileSync(fixture('sharegpt.parquet'));
    const requests: string[] = [];
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      requests.push(req.url!);
      const json = (files: string[]) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sha: SHA, siblings: files.map((rfilename) => ({ rfilename })) }));
      if (req.url === '/api/datasets/acme/chats/revision/main') return json(['README.md', 'chats.py']);
      if (req.url === `/api/datasets/acme/chats/revision/${encodeURIComponent('refs/convert/parquet')}`) return json(['default/train/0000.parquet', 'default/test/0000.parquet']);
      if (req.url === `/datasets/acme/chats/resolve/${SHA}/default/train/0000.parquet`) return void res.writeHead(200).end(body);
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const saved = { ...process.env };
    t.after(() => {
      process.env = saved;
      server.close();
    });
    process.env.HF_ENDPOINT = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    process.env.HF_HOME = join(work, 'hf-home');
    delete process.env.HF_HUB_CACHE;
    delete process.env.HF_HUB_OFFLINE;
    delete process.env.HF_TOKEN;
    const logs: string[] = [];
    const [set] = await loadDataSources('acme/chats', {}, undefined, (p) => resolveDataFiles(p, (l) => logs.push(l)));
    assert.equal(set!.format, 'sharegpt');
    assert.equal(set!.records.length, 2);
    assert.ok(!requests.some((u) => u.includes('/test/')), 'only the train split is downloaded');
    assert.ok(logs.some((l) => l.includes('hub: --data_path acme/chats is')));
  });
});
