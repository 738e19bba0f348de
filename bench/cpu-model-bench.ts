// The frame of the benchmarks that run tiny-english (../shared) or a random model of a SHAPES shape through our
// cpu backend in this process (serve-scaling.ts, decode-profile.ts): expected failures end in one line, the model's
// folder lives in a temporary directory removed afterwards, the model is loaded in bf16 as serve holds it (packed,
// unless --layout rows), the JSON is written atomically. Not the measurements.

import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CpuBackend } from '../src/backends/native/cpu.ts';
import { loadCpuAddon } from '../src/backends/native/cpu-addon.ts';
import type { Model } from '../src/model/llama.ts';
import { loadModel } from '../src/model/load.ts';
import { packForInference } from '../src/model/pack.ts';
import { writeFileAtomic } from '../src/util/atomic-write.ts';
import { flag } from './flags.ts';
import { benchModelDir } from './random-model.ts';
import { SHAPES } from './shapes.ts';

export interface CpuModelBench {
  be: CpuBackend;
  /** Prints `script: message` and exits 1. */
  fail(message: string): never;
  /** fn on the model's HF folder (tiny-english itself, or a random model written into a temporary directory). */
  withModelDir<T>(fn: (dir: string) => Promise<T>): Promise<T>;
  /** The weight layout asked for: 'packed' (serve's, the default) or 'rows' (--layout rows, the stored one). */
  layout: 'packed' | 'rows';
  /** The model in that folder in bf16, in that layout (or the one given). */
  loadServed(dir: string, as?: 'packed' | 'rows'): Promise<Model>;
  /** value as indented JSON at path (its folder made), through a temporary name; a failure ends the script. */
  writeJson(path: string, value: unknown): Promise<void>;
}

/** Checks that ../shared and the cpu backend are there and that `model` is known; fails in one line otherwise. */
export function cpuModelBench(script: string, model: string): CpuModelBench {
  const fail: (message: string) => never = (message) => {
    console.error(`${script}: ${message}`);
    process.exit(1);
  };
  const shared = process.env.ALPACA_SHARED_DIR ?? resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared');
  const tinyEnglish = join(shared, 'fixtures', 'pretrained', 'tiny-english');
  if (!existsSync(tinyEnglish)) fail(`${tinyEnglish} is missing: this benchmark needs ../shared beside the project (or ALPACA_SHARED_DIR)`);
  if (model !== 'tiny-english' && !SHAPES[model]) fail(`unknown --model ${model}; known: tiny-english, ${Object.keys(SHAPES).join(', ')}`);
  const layout = flag('layout', 'packed');
  if (layout !== 'packed' && layout !== 'rows') fail(`--layout takes packed or rows, not ${layout}`);
  const addon = loadCpuAddon();
  if ('unavailable' in addon) fail(`no cpu backend: ${addon.unavailable}`);
  const be = new CpuBackend(addon);
  return {
    be,
    fail,
    layout,
    async loadServed(dir, as = layout) {
      const m = await loadModel(be, dir, { dtype: 'bf16' });
      if (as === 'packed' && packForInference(m) === 0) fail('packed weights: this CPU has no AVX512_BF16, so nothing is packed; pass --layout rows');
      return m;
    },
    async withModelDir(fn) {
      const work = mkdtempSync(join(tmpdir(), `bench-${script}-`));
      try {
        return await fn(await benchModelDir(model, tinyEnglish, work));
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    },
    async writeJson(path, value) {
      try {
        mkdirSync(dirname(path), { recursive: true });
        await writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
      } catch (err) {
        fail(`could not write ${path} (${(err as Error).message}); pick another --json`);
      }
    },
  };
}
