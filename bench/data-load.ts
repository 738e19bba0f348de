// Benchmark: load a 50,000-record Alpaca-style JSON data set (~40 MB) and tokenize it as finetune does
// (alpaca template, cutoff 256, inputs masked) with the LLaMA-2 tokenizer.model read directly.
// Records are real Alpaca records from ../shared/data with their words reshuffled, so every record is
// distinct but the vocabulary is natural. Usage: node --import tsx bench/data-load.ts [--json OUT]

import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDataset } from '../src/data/dataset.ts';
import { Prompter } from '../src/data/prompter.ts';
import { makePromptTokenizer } from '../src/data/tokenize.ts';
import { Rng } from '../src/engine/random.ts';
import { SentencePieceTokenizer } from '../src/tokenizer/sentencepiece-tokenizer.ts';
import { flag } from './flags.ts';

const RECORDS = 50_000;
const shared = process.env.ALPACA_SHARED_DIR ?? resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared');
const source: { instruction: string; input: string; output: string }[] = JSON.parse(readFileSync(join(shared, 'data', 'llamafactory_alpaca_en_demo.json'), 'utf8'));

const rng = new Rng(1);
const reshuffle = (text: string) => rng.shuffle(text.split(' ')).join(' ');
const dir = mkdtempSync(join(tmpdir(), 'bench-data-'));
const path = join(dir, 'alpaca-50k.json');
const lines: string[] = [];
for (let i = 0; i < RECORDS; i++) {
  const r = source[i % source.length]!;
  lines.push(JSON.stringify({ instruction: reshuffle(r.instruction), input: r.input ? reshuffle(r.input) : '', output: reshuffle(r.output) }));
}
writeFileSync(path, `[\n${lines.join(',\n')}\n]\n`);
lines.length = 0;
const megabytes = statSync(path).size / 1e6;

const seconds = (start: number) => (performance.now() - start) / 1000;
let start = performance.now();
const dataset = await loadDataset(path);
const loadSeconds = seconds(start);
const rssAfterLoad = process.memoryUsage().rss / 2 ** 20;

start = performance.now();
const tokenizer = SentencePieceTokenizer.fromFile(join(shared, 'fixtures', 'tokenizers', 'llama2', 'tokenizer.model'));
const tokenizerSeconds = seconds(start);
const toExample = makePromptTokenizer(tokenizer, Prompter.load('alpaca'), { cutoffLen: 256, trainOnInputs: false, addEosToken: false });
start = performance.now();
let tokens = 0;
for (const record of dataset.records) tokens += toExample(record).input_ids.length;
const tokenizeSeconds = seconds(start);
rmSync(dir, { recursive: true, force: true });

const result = {
  records: dataset.records.length,
  file_mb: +megabytes.toFixed(1),
  load_s: +loadSeconds.toFixed(3),
  load_mb_per_s: +(megabytes / loadSeconds).toFixed(1),
  rss_after_load_mib: Math.round(rssAfterLoad),
  tokenizer_load_s: +tokenizerSeconds.toFixed(3),
  tokenize_s: +tokenizeSeconds.toFixed(3),
  examples_per_s: Math.round(dataset.records.length / tokenizeSeconds),
  example_tokens: tokens,
};
console.log('| step | time | rate |\n| --- | --- | --- |');
console.log(`| load ${result.records} records (${result.file_mb} MB JSON) | ${result.load_s} s | ${result.load_mb_per_s} MB/s (RSS ${result.rss_after_load_mib} MiB) |`);
console.log(`| read tokenizer.model | ${result.tokenizer_load_s} s | |`);
console.log(`| tokenize (full + prompt, cutoff 256) | ${result.tokenize_s} s | ${result.examples_per_s} examples/s, ${tokens} tokens |`);
const jsonPath = flag('json', '');
if (jsonPath) writeFileSync(jsonPath, JSON.stringify(result, null, 2) + '\n');
