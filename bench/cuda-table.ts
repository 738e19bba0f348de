// The side-by-side table of a device run: our cuda benchmark (bench/cuda-train.ts) against the HF
// baselines measured in the same call, with ratios and the issue's targets. Reads JSON-lines files,
// prints markdown. Not a benchmark itself.
//   node --import tsx bench/cuda-table.ts OURS.jsonl HF_EAGER.jsonl HF_COMPILE.jsonl HF_GENERATE.jsonl

import { existsSync, readFileSync } from 'node:fs';

type Row = Record<string, any>;

function rows(path: string | undefined): Row[] {
  if (!path || !existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Row);
}

const [oursPath, eagerPath, compilePath, generatePath] = process.argv.slice(2);
const ours = rows(oursPath), eager = rows(eagerPath), compiled = rows(compilePath), generate = rows(generatePath);
const find = (list: Row[], key: string, value: string) => list.find((r) => r[key] === value);
const num = (x: unknown) => (typeof x === 'number' ? x.toLocaleString('en-US') : '—');
const ratio = (a: unknown, b: unknown) => (typeof a === 'number' && typeof b === 'number' && b > 0 ? `${(a / b).toFixed(2)}×` : '—');

// The issue's goals: a tok/s ratio against a reference column, and a peak memory bound.
const TARGETS: Record<string, { vs: 'eager' | 'compile' | 'generate'; ratio: number; maxGib?: number; minTokS?: number }> = {
  '7b-qv-r8-mb8-s256': { vs: 'compile', ratio: 1.3, maxGib: 18 },
  '7b-all-r16-mb4-s512': { vs: 'eager', ratio: 2 },
  'decode-7b': { vs: 'generate', ratio: 1, minTokS: 150 },
};

const lines = [
  '| case | ours tok/s | HF eager tok/s | ours / eager | HF compile tok/s | ours / compile | ours peak GiB | HF peak GiB | target | met |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
];
for (const o of ours) {
  const name = String(o.case);
  const decodeShape = name.startsWith('decode-') ? (name === 'decode-7b' ? 'llama-7b' : 'tinyllama-1.1b') : null;
  const e = decodeShape ? find(generate, 'shape', decodeShape) : find(eager, 'case', name);
  const c = decodeShape ? undefined : find(compiled, 'case', `${name}+compile`);
  const goal = TARGETS[name];
  let target = '', met = '';
  if (goal) {
    const ref = goal.vs === 'compile' ? c : e;
    const r = typeof o.tokens_per_s === 'number' && typeof ref?.tokens_per_s === 'number' ? o.tokens_per_s / ref.tokens_per_s : NaN;
    const parts = [`≥ ${goal.ratio}× ${goal.vs}`];
    let ok = r >= goal.ratio;
    if (goal.maxGib) {
      parts.push(`≤ ${goal.maxGib} GiB`);
      ok &&= o.peak_mem_gib <= goal.maxGib;
    }
    if (goal.minTokS) {
      parts.push(`≥ ${goal.minTokS} tok/s`);
      ok &&= o.tokens_per_s >= goal.minTokS;
    }
    target = parts.join(', ');
    met = Number.isNaN(r) ? 'no reference' : ok ? 'yes' : 'no';
  }
  lines.push(`| ${name} | ${num(o.tokens_per_s)} | ${num(e?.tokens_per_s)} | ${ratio(o.tokens_per_s, e?.tokens_per_s)} | ${num(c?.tokens_per_s)} | ${ratio(o.tokens_per_s, c?.tokens_per_s)} | ${num(o.peak_mem_gib)} | ${num(e?.peak_mem_gib)}${c ? ` / ${num(c.peak_mem_gib)}` : ''} | ${target} | ${met} |`);
}
const gpu = ours[0]?.gpu ?? eager[0]?.gpu ?? 'unknown GPU';
console.log(`Same device call, ${gpu}; HF decode is generate() (batch 1, greedy, 64-token prompt, 128 new tokens).\n`);
console.log(lines.join('\n'));
