// PEFT adapters with modules_to_save (embed_tokens, lm_head): read under PEFT's saved keys and merged by export-hf
// as PEFT's merge_and_unload does (the module is replaced by the adapter's copy; the LoRA projections merge as
// usual). The keys are PEFT's: get_peft_model_state_dict keeps ModulesToSaveWrapper's `modules_to_save.default.weight`
// as `<module>.weight` once the adapter name is removed, so base_model.model.model.embed_tokens.weight and
// base_model.model.lm_head.weight. Expectations by hand: the exported module equals the copy byte for byte, every
// projection equals the plain LoRA export's, and the export's own probe check (base + adapter, modules swapped in,
// against the merged folder) passes. Adapters that swap modules are refused where they would be one adapter among others.

import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { JsBackend } from '../../src/backends/js/index.ts';
import { UserError } from '../../src/errors.ts';
import { exportHf } from '../../src/export/export-hf.ts';
import { bytesOf } from '../../src/formats/host-tensor.ts';
import { readPeftAdapter } from '../../src/formats/peft-adapter.ts';
import { readSafetensors } from '../../src/formats/safetensors.ts';
import { writeSafetensors } from '../../src/formats/safetensors-write.ts';
import { peftModuleKey } from '../../src/formats/weight-names.ts';
import { Rng } from '../../src/engine/random.ts';
import { loadModel } from '../../src/model/load.ts';
import { loadLoraAdapter } from '../../src/model/lora-io.ts';
import { fixtureDir } from '../helpers/golden.ts';
import { needShared } from '../helpers/shared.ts';

const work = mkdtempSync(join(tmpdir(), 'modules-to-save-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('export-hf swaps in modules_to_save copies (PEFT keys) and merges the LoRA as usual', async (t) => {
  if (!needShared(t, 'fixtures', 'models', 'llama-mha', 'adapter')) return;
  const base = fixtureDir('llama-mha');
  const lora = readPeftAdapter(join(base, 'adapter'));
  const dir = join(work, 'adapter');
  const config = JSON.parse(readFileSync(join(base, 'adapter', 'adapter_config.json'), 'utf8'));
  const rng = new Rng(5);
  const copy = (name: string) => {
    const t = readSafetensors(join(base, 'model.safetensors')).get(name)!;
    const data = Float32Array.from(t.data as Float32Array, (v) => v + (rng.next() - 0.5) * 0.1);
    return { dtype: 'F32' as const, shape: t.shape, data };
  };
  const embed = copy('model.embed_tokens.weight'), head = copy('lm_head.weight');
  const tensors = new Map([...lora.tensors, [peftModuleKey('embed_tokens'), embed], [peftModuleKey('lm_head'), head]]);
  assert.equal(peftModuleKey('embed_tokens'), 'base_model.model.model.embed_tokens.weight');
  assert.equal(peftModuleKey('lm_head'), 'base_model.model.lm_head.weight');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dir);
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...config, modules_to_save: ['embed_tokens', 'lm_head'] }));
  await writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors);
  assert.deepEqual(readPeftAdapter(dir).config.modulesToSave, ['embed_tokens', 'lm_head']);

  const out = join(work, 'merged');
  const result = await exportHf({ baseModel: base, loraWeights: dir, outputDir: out, backend: new JsBackend() });
  assert.ok(result.logits!.maxDiff <= 1e-5 * result.logits!.scale, `probe logits differ by ${result.logits!.maxDiff}`);
  const plain = join(work, 'plain');
  await exportHf({ baseModel: base, loraWeights: join(base, 'adapter'), outputDir: plain, verify: false });
  const ours = readSafetensors(join(out, 'model.safetensors')), reference = readSafetensors(join(plain, 'model.safetensors'));
  assert.ok(Buffer.from(bytesOf(ours.get('model.embed_tokens.weight')!.data)).equals(Buffer.from(bytesOf(embed.data))), 'embed_tokens is the copy');
  assert.ok(Buffer.from(bytesOf(ours.get('lm_head.weight')!.data)).equals(Buffer.from(bytesOf(head.data))), 'lm_head is the copy');
  for (const [name, tensor] of reference) {
    if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight') continue;
    assert.ok(Buffer.from(bytesOf(ours.get(name)!.data)).equals(Buffer.from(bytesOf(tensor.data))), `${name} as in the plain LoRA export`);
  }

  const be = new JsBackend();
  const m = await loadModel(be, base);
  assert.throws(() => loadLoraAdapter(be, m.config, dir), UserError);
  const bad = join(work, 'bad');
  mkdirSync(bad);
  copyFileSync(join(dir, 'adapter_model.safetensors'), join(bad, 'adapter_model.safetensors'));
  writeFileSync(join(bad, 'adapter_config.json'), JSON.stringify({ ...config, modules_to_save: ['score'] }));
  assert.throws(() => readPeftAdapter(bad), /modules_to_save \["score"\] is not supported: only embed_tokens and lm_head/);
});
