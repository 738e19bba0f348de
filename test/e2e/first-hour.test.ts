// What a new user meets in the first hour: a misspelt command gets the nearest one; --backend cuda without a GPU
// names the backends there are; `score --batch` reads what `inspect-data --dump_jsonl` writes; serve takes the
// seed's --share_gradio with a note; finetune refuses a bad path or data before its parameter dump and turns
// --warmup_ratio into steps; generate, score and export-gguf read Hub ids (from a local Hub-shaped server).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { score } from '../../src/api/score.ts';
import { JsBackend } from '../../src/backends/js/index.ts';
import { cudaLoader } from '../../src/backends/native/cuda.ts';
import { readBatchFile } from '../../src/data/batch-file.ts';
import { EXAMPLE_DATA, writeExampleModel } from '../../src/example/run-example.ts';
import { exportGguf } from '../../src/export/export-gguf.ts';
import { loadModelSet } from '../../src/generate/runtime.ts';
import { finetune } from '../../src/train/finetune.ts';
import { runCli } from '../helpers/cli.ts';
import { needShared, PROJECT_ROOT, sharedPath } from '../helpers/shared.ts';

const work = mkdtempSync(join(tmpdir(), 'first-hour-'));
after(() => rmSync(work, { recursive: true, force: true }));
const model = join(work, 'tiny');
const ready = writeExampleModel(model, () => {});

test('a misspelt command gets the nearest one', () => {
  const r = runCli(['genrate']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command "genrate"; did you mean generate\?/);
});

test('--backend cuda without a GPU names the backends that are available', async (t) => {
  if (!('unavailable' in cudaLoader.load())) return t.skip('a GPU is here: cuda is available');
  await ready;
  const r = runCli(['score', '--base_model', model, '--batch', EXAMPLE_DATA, '--backend', 'cuda']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /error: --backend cuda is not available: .*; available here: (cpu, )?js \(or auto, the first of them\)\n$/);
});

test('score --batch reads the rows inspect-data --dump_jsonl writes', async () => {
  await ready;
  const dump = join(work, 'rows.jsonl');
  const d = runCli(['inspect-data', '--base_model', model, '--data_path', EXAMPLE_DATA, '--dump_jsonl', dump, '--cutoff_len', '64']);
  assert.equal(d.status, 0, d.stderr);
  const batch = readBatchFile(dump);
  const lines = readFileSync(dump, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(batch.B, lines.length);
  assert.equal(batch.T, Math.max(...lines.map((l) => l.input_ids.length)));
  const short = lines.findIndex((l) => l.input_ids.length < batch.T);
  assert.equal(batch.attentionMask![short * batch.T + batch.T - 1], 0, 'padding is masked');
  assert.equal(batch.labels![short * batch.T + batch.T - 1], -100, 'padding is not scored');
  const r = runCli(['score', '--base_model', model, '--batch', dump, '--backend', 'js']);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(JSON.parse(r.stdout).loss > 0);
});

test('serve --share_gradio is accepted with a note that nothing is tunnelled', async () => {
  await ready;
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'alpaca-lora.js'), 'serve', '--base_model', model, '--port', '0', '--backend', 'js', '--share_gradio'], { cwd: PROJECT_ROOT });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', () => /note: --share_gradio/.test(stderr) && resolve());
      child.once('exit', () => reject(new Error(`serve exited:\n${stderr}`)));
    });
    assert.match(stderr, /note: --share_gradio makes no public link: the page is not tunnelled to the internet; it is at http:\/\/127\.0\.0\.1:\d+ only/);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
});

test('finetune refuses a bad path or data before the parameter dump; --warmup_ratio becomes steps', async () => {
  await ready;
  const lines: string[] = [];
  const base = { baseModel: model, dataPath: EXAMPLE_DATA, outputDir: join(work, 'run'), backend: new JsBackend(), valSetSize: 0, progress: false, log: (l: string) => lines.push(l) };
  const emptyOutput = join(work, 'empty.json');
  writeFileSync(emptyOutput, JSON.stringify([{ instruction: 'a', output: '' }]));
  for (const [bad, message] of [
    [{ baseModel: join(work, 'nowhere') }, /--base_model .*nowhere does not exist/],
    [{ dataPath: join(work, 'missing.json') }, /missing\.json/],
    [{ dataPath: emptyOutput }, /"output" is empty/],
    [{ resumeFromCheckpoint: join(work, 'no-checkpoint') }, /no-checkpoint/],
  ] as const) {
    lines.length = 0;
    await assert.rejects(finetune({ ...base, ...bad }), message);
    assert.ok(!lines.some((l) => l.startsWith('Training Alpaca-LoRA model with params')), `refused after the dump: ${lines.join('\n')}`);
  }
  lines.length = 0;
  const r = await finetune({ ...base, maxSteps: 4, warmupRatio: 0.3, batchSize: 4, microBatchSize: 4, saveSteps: 0 });
  assert.equal(r.steps, 4);
  assert.match(lines.join('\n'), /\nwarmup_steps: 2\nwarmup_ratio: 0.3\n/, 'ceil(4 × 0.3) = 2, as transformers rounds');
});

test('generate, score and export-gguf read Hub ids for the base and the adapter', async (t) => {
  if (!needShared(t, 'fixtures', 'trainer', 'final_adapter')) return;
  const SHA = 'b0ba'.padEnd(40, '0');
  const repos: Record<string, string> = { 'acme/tiny': sharedPath('fixtures', 'trainer', 'base'), 'acme/tiny-lora': sharedPath('fixtures', 'trainer', 'final_adapter') };
  const server = createServer((req, res) => {
    const info = /^\/api\/models\/(\w+\/[\w-]+)\/revision\/main$/.exec(req.url!);
    if (info && repos[info[1]!]) return void res.writeHead(200).end(JSON.stringify({ sha: SHA, siblings: readdirSync(repos[info[1]!]!).map((rfilename) => ({ rfilename })) }));
    const file = /^\/(\w+\/[\w-]+)\/resolve\/\w+\/([\w.]+)$/.exec(req.url!);
    const path = file && repos[file[1]!] && join(repos[file[1]!]!, file[2]!);
    if (!path || !existsSync(path)) return void res.writeHead(404).end();
    const body = readFileSync(path);
    res.writeHead(200, { etag: `"${createHash('sha256').update(body).digest('hex')}"` }).end(body);
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

  const set = await loadModelSet({ backend: new JsBackend(), baseModel: 'acme/tiny', loraWeights: ['acme/tiny-lora'] });
  assert.deepEqual([set.baseName, [...set.adapters.keys()]], ['tiny', ['tiny-lora']], 'models keep the names of their ids');
  const batch = { B: 1, T: 4, inputIds: Int32Array.from([1, 5, 9, 2]), attentionMask: null, labels: null };
  const viaHub = await score({ backend: new JsBackend(), baseModel: 'acme/tiny', loraWeights: 'acme/tiny-lora', batch });
  const local = await score({ backend: new JsBackend(), baseModel: repos['acme/tiny']!, loraWeights: repos['acme/tiny-lora']!, batch });
  assert.equal(viaHub.loss, local.loss);
  const outfile = join(work, 'hub.gguf');
  const result = await exportGguf({ baseModel: 'acme/tiny', loraWeights: 'acme/tiny-lora', outfile });
  assert.ok(result.adapted > 0 && existsSync(outfile));
  process.env.HF_HUB_OFFLINE = '1';
  server.close();
  assert.equal((await score({ backend: new JsBackend(), baseModel: 'acme/tiny', batch })).tokens, 3, 'offline: from the cache alone');
});
