// Greedy and 3-beam continuations against transformers' generate() on the merged-after-3-steps fixture
// models (golden.json `generate`), token for token: through the merged weights and through the base
// model with the after-3-steps adapter applied unmerged.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Backend } from '../../src/engine/backend.ts';
import type { HostTensor } from '../../src/formats/host-tensor.ts';
import { readSafetensors } from '../../src/formats/safetensors.ts';
import { generate } from '../../src/generate/generate.ts';
import { DEFAULT_OPTIONS, type GenerationOptions } from '../../src/generate/options.ts';
import type { LoraUse, Model } from '../../src/model/llama.ts';
import { loadModel } from '../../src/model/load.ts';
import { adapterFromTensors, parseTargets } from '../../src/model/lora-io.ts';
import { testBackends } from '../helpers/backends.ts';
import { needShared, sharedPath } from '../helpers/shared.ts';

interface GenerateGolden {
  prompt: number[];
  max_new_tokens: number;
  greedy: number[];
  beam3: number[];
}

/** The merged state dict as a model folder: config.json plus merged_after3.safetensors as model.safetensors. */
async function loadMerged(be: Backend, dir: string): Promise<Model> {
  const tmp = mkdtempSync(join(tmpdir(), 'merged-'));
  try {
    copyFileSync(join(dir, 'config.json'), join(tmp, 'config.json'));
    symlinkSync(join(dir, 'merged_after3.safetensors'), join(tmp, 'model.safetensors'));
    return await loadModel(be, tmp);
  } finally {
    rmSync(tmp, { recursive: true });
  }
}

/** The base model and the adapter after 3 steps (golden.safetensors `after3.*`), unmerged. */
async function loadBaseWithAfter3(be: Backend, dir: string): Promise<{ model: Model; lora: LoraUse }> {
  const model = await loadModel(be, dir);
  const cfg = JSON.parse(readFileSync(join(dir, 'adapter', 'adapter_config.json'), 'utf8'));
  const tensors = new Map<string, HostTensor>();
  for (const [name, t] of readSafetensors(join(dir, 'golden.safetensors'))) {
    if (name.startsWith('after3.')) tensors.set(name.slice('after3.'.length).replace('.default.', '.'), t);
  }
  const settings = { r: cfg.r, alpha: cfg.lora_alpha, dropout: 0, targets: parseTargets(cfg.target_modules, dir), useRslora: false };
  const adapter = adapterFromTensors(model.be, model.config, settings, tensors, 'golden.safetensors after3');
  return { model, lora: { adapter, dropout: 0, seed: 0 } };
}

function options(golden: GenerateGolden, numBeams: number): GenerationOptions {
  return { ...DEFAULT_OPTIONS, maxNewTokens: golden.max_new_tokens, numBeams, eosTokenIds: [], lengthPenalty: 1, earlyStopping: false };
}

for (const backend of testBackends()) for (const name of ['llama-mha', 'llama-gqa']) {
  const dir = sharedPath('fixtures', 'models', name);
  const golden = (): GenerateGolden => JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')).generate;

  test(`${name} on ${backend.name}: merged model, greedy and 3-beam match transformers`, async (t) => {
    if (!needShared(t, 'fixtures', 'models', name, 'merged_after3.safetensors')) return;
    const g = golden();
    const model = await loadMerged(backend.make(), dir);
    const [greedy] = await generate(model, null, [g.prompt], options(g, 1));
    assert.deepEqual([...g.prompt, ...greedy!.tokens], g.greedy);
    assert.equal(greedy!.finishReason, 'length');
    const [beam] = await generate(model, null, [g.prompt], options(g, 3));
    assert.deepEqual([...g.prompt, ...beam!.tokens], g.beam3);
  });

  test(`${name} on ${backend.name}: base model with the unmerged adapter, greedy and 3-beam match transformers`, async (t) => {
    if (!needShared(t, 'fixtures', 'models', name, 'golden.safetensors')) return;
    const g = golden();
    const { model, lora } = await loadBaseWithAfter3(backend.make(), dir);
    const [greedy] = await generate(model, lora, [g.prompt], options(g, 1));
    assert.deepEqual([...g.prompt, ...greedy!.tokens], g.greedy);
    const [beam] = await generate(model, lora, [g.prompt], options(g, 3));
    assert.deepEqual([...g.prompt, ...beam!.tokens], g.beam3);
  });
}
