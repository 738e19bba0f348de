// --base_model and --data_path as Hub ids, against a local server that answers with the Hub's URL layout
// (no test reaches the internet): files land in huggingface_hub's cache layout under HF_HOME, a second run
// downloads nothing, HF_HUB_OFFLINE=1 needs no server, HF_TOKEN is sent, refusals name what to do.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { JsBackend } from '../../src/backends/js/index.ts';
import { EXAMPLE_DATA, writeExampleModel } from '../../src/example/run-example.ts';
import { finetune, type FinetuneInput } from '../../src/train/finetune.ts';

const SHA = 'c0ffee'.padEnd(40, '0');
const TOKEN = 'hf_test_token';

test('Hub ids resolve through a Hub-shaped server into the shared cache layout', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'finetune-hub-'));
  const model = join(work, 'served-model');
  await writeExampleModel(model, () => {});
  const served = new Map<string, Buffer>([
    ...readdirSync(model).map((f) => [`/acme/tiny-llama/resolve/${SHA}/${f}`, readFileSync(join(model, f))] as [string, Buffer]),
    [`/datasets/acme/instructions/resolve/${SHA}/data/train.json`, readFileSync(EXAMPLE_DATA)],
  ]);
  const requests: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push(req.url!);
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return void res.writeHead(401).end();
    const json = (files: string[]) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sha: SHA, siblings: files.map((rfilename) => ({ rfilename })) }));
    if (req.url === '/api/models/acme/tiny-llama/revision/main') return json([...readdirSync(model), 'README.md']);
    if (req.url === '/api/datasets/acme/instructions/revision/main') return json(['README.md', 'data/train.json']);
    const body = served.get(req.url!);
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { etag: `"${createHash('sha256').update(body).digest('hex')}"` }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const saved = { ...process.env };
  t.after(() => {
    process.env = saved;
    server.close();
    rmSync(work, { recursive: true, force: true });
  });
  process.env.HF_ENDPOINT = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.HF_HOME = join(work, 'hf-home');
  process.env.HF_TOKEN = TOKEN;
  delete process.env.HF_HUB_CACHE;
  delete process.env.HF_HUB_OFFLINE;
  const lines: string[] = [];
  const run = (extra: Partial<FinetuneInput> = {}) => finetune({
    baseModel: 'acme/tiny-llama', dataPath: 'acme/instructions', outputDir: join(work, 'out'), backend: new JsBackend(), maxSteps: 1,
    batchSize: 2, microBatchSize: 2, valSetSize: 0, saveSteps: 0, progress: false, log: (l) => lines.push(l), ...extra,
  });

  const first = await run();
  assert.equal(first.steps, 1);
  const repo = join(work, 'hf-home', 'hub', 'models--acme--tiny-llama');
  assert.equal(readFileSync(join(repo, 'refs', 'main'), 'utf8'), SHA);
  const config = join(repo, 'snapshots', SHA, 'config.json');
  assert.ok(lstatSync(config).isSymbolicLink());
  assert.match(readlinkSync(config), /^\.\.\/\.\.\/blobs\/[0-9a-f]{64}$/);
  assert.ok(statSync(join(work, 'hf-home', 'hub', 'datasets--acme--instructions', 'snapshots', SHA, 'data', 'train.json')).isFile());
  assert.ok(!requests.some((u) => u.endsWith('README.md')));
  assert.ok(lines.some((l) => l.startsWith('hub: downloading')));

  requests.length = 0;
  lines.length = 0;
  await run();
  assert.deepEqual(requests, ['/api/models/acme/tiny-llama/revision/main', '/api/datasets/acme/instructions/revision/main']);
  assert.ok(!lines.some((l) => l.startsWith('hub: downloading')));

  requests.length = 0;
  process.env.HF_HUB_OFFLINE = '1';
  await run();
  assert.deepEqual(requests, []);
  await assert.rejects(run({ baseModel: 'acme/never-downloaded' }), /acme\/never-downloaded is not in the cache .* HF_HUB_OFFLINE=1/);
  delete process.env.HF_HUB_OFFLINE;

  await assert.rejects(run({ baseModel: 'acme/missing' }), /--base_model acme\/missing is not on the Hub .*HTTP 404/);
  process.env.HF_TOKEN = 'wrong';
  await assert.rejects(run(), /refused access \(HTTP 401\); .*set HF_TOKEN/);
});
