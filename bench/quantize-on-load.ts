// Benchmark: quantizing a linear on load (model/quantized-base.ts), in params/s: the TypeScript specs
// (formats/bnb-4bit.ts, bnb-int8.ts) and the cpu addon's quantizers, each repeated; prints the range of each.
// Not the model load (bench/lora-train-case.ts prints load_s).

//   node --import tsx bench/quantize-on-load.ts [--shape 4096x11008] [--repeat 3] [--threads n]

import { loadCpuAddon } from '../src/backends/native/cpu-addon.ts';
import { nativeQuantizers } from '../src/backends/native/cpu-quantize.ts';
import { Rng } from '../src/engine/random.ts';
import { quantize4bit } from '../src/formats/bnb-4bit.ts';
import { quantizeInt8Rows } from '../src/formats/bnb-int8.ts';
import { flag } from './flags.ts';

const [OC, C] = flag('shape', '4096x11008').split('x').map(Number) as [number, number];
const repeat = Number(flag('repeat', '3'));
const addon = loadCpuAddon();
if (process.argv.includes('--threads') && !('unavailable' in addon)) addon.setThreads(Number(flag('threads', '0')));
const native = nativeQuantizers();

const rng = new Rng(1);
const weight = Float32Array.from({ length: OC * C }, () => 0.02 * rng.normal());
const cases: [string, () => unknown][] = [
  ['nf4 ts', () => quantize4bit(weight, [OC, C], 'nf4', 64, true, 'bf16')],
  ['int8 ts', () => quantizeInt8Rows(weight, [OC, C])],
];
if (native) {
  cases.push(['nf4 native', () => quantize4bit(weight, [OC, C], 'nf4', 64, true, 'bf16', native.blocks4bit)]);
  cases.push(['fp4 native', () => quantize4bit(weight, [OC, C], 'fp4', 64, false, 'bf16', native.blocks4bit)]);
  cases.push(['int8 native', () => quantizeInt8Rows(weight, [OC, C], 6, native.int8Rows)]);
}

const threads = 'unavailable' in addon ? '-' : addon.info().threads;
console.log(`quantizing a [${OC}, ${C}] weight, ${repeat} runs each (addon threads: ${threads})`);
const results: Record<string, number[]> = {};
for (const [name, run] of cases) {
  results[name] = [];
  for (let r = 0; r < repeat; r++) {
    const t = performance.now();
    run();
    results[name].push((OC * C) / ((performance.now() - t) / 1e3) / 1e6);
  }
  const speeds = results[name];
  console.log(`${name.padEnd(12)} ${Math.min(...speeds).toFixed(1).padStart(7)} – ${Math.max(...speeds).toFixed(1)} M params/s`);
}
console.log(JSON.stringify({ shape: [OC, C], threads, mparamsPerS: results }));
