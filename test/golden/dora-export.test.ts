// Exports of a DoRA adapter against PEFT's merge in float64 (../shared/fixtures/dora/llama-mha): export-hf's
// weights against merged.<weight> and its logits against merged.logits; export-state-dict read back equal to the
// HF export; export-gguf merged (read back and checked by the export itself) and the refusal of a GGUF LoRA
// adapter, which llama.cpp has no DoRA form for. Tolerances: weights 1e-6 relative + 1e-6, logits 2e-5 + 2e-5 relative.

import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadLlamaConfig } from '../../src/arch/llama-config.ts';
import { JsBackend } from '../../src/backends/js/index.ts';
import { UserError } from '../../src/errors.ts';
import { learnBpe, writeTokenizer } from '../../src/example/bpe-tokenizer.ts';
import { exportGguf } from '../../src/export/export-gguf.ts';
import { exportHf } from '../../src/export/export-hf.ts';
import { exportStateDict, readMetaAsHf } from '../../src/export/export-state-dict.ts';
import { bytesOf, toFloat32 } from '../../src/formats/host-tensor.ts';
import { readSafetensors } from '../../src/formats/safetensors.ts';
import { TorchFile } from '../../src/formats/torch-pickle.ts';
import { scoreBatch } from '../../src/model/compute.ts';
import { loadModel } from '../../src/model/load.ts';
import { DORA_BASE, DORA_DIR, writeDoraFixtureAdapter } from '../helpers/dora-fixture.ts';
import { assertClose } from '../helpers/golden.ts';
import { needShared } from '../helpers/shared.ts';

const work = mkdtempSync(join(tmpdir(), 'dora-export-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('export-hf, export-state-dict and export-gguf merge a DoRA adapter as PEFT does; a GGUF LoRA export refuses it', async (t) => {
  if (!needShared(t, 'fixtures', 'dora', 'llama-mha')) return;
  const golden = readSafetensors(join(DORA_DIR, 'golden.safetensors'));
  const adapter = await writeDoraFixtureAdapter(join(work, 'adapter'));
  const hf = join(work, 'hf');
  const result = await exportHf({ baseModel: DORA_BASE, loraWeights: adapter, outputDir: hf, backend: new JsBackend() });
  assert.equal(result.adapted, 14);
  assert.ok(result.logits!.maxDiff <= 1e-5 * result.logits!.scale, `probe logits differ by ${result.logits!.maxDiff}`);
  const weights = readSafetensors(join(hf, 'model.safetensors'));
  let compared = 0;
  for (const [key, expected] of golden) {
    if (!key.startsWith('merged.model.')) continue;
    assertClose(toFloat32(weights.get(key.slice('merged.'.length))!), toFloat32(expected), 1e-6, 1e-6, key);
    compared++;
  }
  assert.equal(compared, 14);

  const m = await loadModel(new JsBackend(), hf);
  const ids = golden.get('input_ids')!;
  const [B, T] = ids.shape as [number, number];
  const V = m.config.vocabSize;
  const logits = new Float32Array(B * T * V);
  const inputIds = Int32Array.from(ids.data as BigInt64Array, Number);
  await scoreBatch(m, { B, T, inputIds, attentionMask: null, labels: inputIds }, null, (row0, _rows, chunk) => logits.set(chunk, row0 * V));
  assertClose(logits, toFloat32(golden.get('merged.logits')!), 2e-5, 2e-5, 'logits of the export');

  const meta = join(work, 'meta');
  await exportStateDict({ baseModel: DORA_BASE, loraWeights: adapter, outputDir: meta });
  const file = TorchFile.open(join(meta, 'consolidated.00.pth'));
  t.after(() => file.close());
  const config = loadLlamaConfig(DORA_BASE);
  for (const [name, expected] of weights) assert.deepEqual(bytesOf(readMetaAsHf([file], config, name).data), bytesOf(expected.data), name);

  const withTokenizer = join(work, 'base-tokenizer'); // GGUF embeds a vocabulary; the fixture base has none
  mkdirSync(withTokenizer);
  for (const f of ['config.json', 'generation_config.json', 'model.safetensors']) copyFileSync(join(DORA_BASE, f), join(withTokenizer, f));
  await writeTokenizer(withTokenizer, learnBpe(['a DoRA adapter, merged and exported'], 300));
  const gguf = await exportGguf({ baseModel: withTokenizer, loraWeights: adapter, outfile: join(work, 'merged.gguf'), outtype: 'f32' });
  assert.equal(gguf.adapted, 14);
  await assert.rejects(
    exportGguf({ baseModel: withTokenizer, loraWeights: adapter, outfile: join(work, 'lora.gguf'), adapterOnly: true }),
    new UserError(`--lora_weights ${adapter} is a DoRA adapter (use_dora), which a GGUF LoRA adapter for llama.cpp cannot represent: export it merged into the base (drop --adapter_only)`),
  );
});
