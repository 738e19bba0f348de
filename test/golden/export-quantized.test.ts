// Exports from a quantized base merge into the dequantized weights (what PEFT's merge_and_unload does on a 4-bit
// model) and say so in one sentence. export-hf of the NF4 checkpoint + the reference's after-3 adapter: every
// linear is the reference's dequantized weight (golden `dequantized.*`) + scaling·B·A, rounded once to bf16 (the
// quant_state dtype): the float32 sum (delta summed in float64 here) rounded to bf16 equals ours in at least 99.9%
// of elements, the rest one bf16 step apart (a float32 rounding of the delta on a tie); every other tensor is
// the checkpoint's own bytes and config.json loses quantization_config. Quantizing llama-mha-bf16 on load exports
// the same bytes. GGUF q8_0 requantizes the merge (within half a q8_0 step, absmax/127, plus the f16 rounding of
// the block scale); export-state-dict from the int8 checkpoint writes the model's dtype (bf16) and verifies.

import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadLlamaConfig } from '../../src/arch/llama-config.ts';
import { JsBackend } from '../../src/backends/js/index.ts';
import { exportGguf, readGgufAsHf } from '../../src/export/export-gguf.ts';
import { exportHf } from '../../src/export/export-hf.ts';
import { exportStateDict } from '../../src/export/export-state-dict.ts';
import type { BnbConfig } from '../../src/formats/bnb-config.ts';
import { learnBpe, writeTokenizer } from '../../src/example/bpe-tokenizer.ts';
import { GgufFile } from '../../src/formats/gguf.ts';
import { bytesOf, fromFloat32, toFloat32 } from '../../src/formats/host-tensor.ts';
import { readSafetensors } from '../../src/formats/safetensors.ts';
import { writeSafetensors } from '../../src/formats/safetensors-write.ts';
import { TorchFile } from '../../src/formats/torch-pickle.ts';
import { fixtureDir, readGolden } from '../helpers/golden.ts';
import { needShared, sharedPath } from '../helpers/shared.ts';

const NF4 = sharedPath('fixtures', 'quant', 'llama-mha-bnb-nf4');
const INT8 = sharedPath('fixtures', 'quant', 'llama-mha-bnb-int8');
const NF4_DQ: BnbConfig = { bits: 4, quantType: 'nf4', doubleQuant: true, computeDtype: 'bfloat16', skipModules: null };
const work = mkdtempSync(join(tmpdir(), 'export-quantized-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** The reference's after-3 adapter of llama-mha as a PEFT folder (as test/golden/export.test.ts builds it). */
async function after3Adapter(): Promise<string> {
  const dir = join(work, 'after3-adapter');
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(fixtureDir('llama-mha'), 'adapter', 'adapter_config.json'), join(dir, 'adapter_config.json'));
  const tensors = [...readGolden('llama-mha').tensors].filter(([k]) => k.startsWith('after3.')).map(([k, v]) => [k.slice(7).replace('.default.weight', '.weight'), v] as const);
  await writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors);
  return dir;
}

/** scaling · B A for the adapted weight `name`, summed in float64; null when the adapter leaves it alone. */
function delta(adapterDir: string, name: string): Float32Array | null {
  const config = JSON.parse(readFileSync(join(adapterDir, 'adapter_config.json'), 'utf8')) as { r: number; lora_alpha: number };
  const tensors = readSafetensors(join(adapterDir, 'adapter_model.safetensors'));
  const key = `base_model.model.${name.slice(0, -'.weight'.length)}`;
  const A = tensors.get(`${key}.lora_A.weight`), B = tensors.get(`${key}.lora_B.weight`);
  if (!A || !B) return null;
  const [r, C] = A.shape as [number, number];
  const OC = B.shape[0]!;
  const a = toFloat32(A), b = toFloat32(B), s = config.lora_alpha / config.r;
  const out = new Float32Array(OC * C);
  for (let o = 0; o < OC; o++) {
    for (let c = 0; c < C; c++) {
      let sum = 0;
      for (let k = 0; k < r; k++) sum += b[o * r + k]! * a[k * C + c]!;
      out[o * C + c] = s * sum;
    }
  }
  return out;
}

/** The NF4 checkpoint with a small tokenizer beside it (GGUF embeds the vocabulary; the fixture has none). */
async function nf4WithTokenizer(): Promise<string> {
  const dir = join(work, 'nf4-tokenizer');
  mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'generation_config.json', 'model.safetensors']) copyFileSync(join(NF4, f), join(dir, f));
  await writeTokenizer(dir, learnBpe(['a quantized base, merged and exported'], 300));
  return dir;
}

const logged = () => {
  const lines: string[] = [];
  return { lines, log: (l: string) => lines.push(l) };
};

test('export-hf of the NF4 checkpoint + an adapter: dequantized weights + the LoRA delta; on-load quantization exports the same', async (t) => {
  if (!needShared(t, 'fixtures', 'quant') || !needShared(t, 'fixtures', 'models', 'llama-mha-bf16')) return;
  const adapter = await after3Adapter();
  const out = join(work, 'nf4-hf');
  const note = logged();
  const result = await exportHf({ baseModel: NF4, loraWeights: adapter, outputDir: out, backend: new JsBackend(), log: note.log });
  assert.deepEqual(note.lines.length, 1);
  assert.match(note.lines[0]!, /^the base's 14 decoder linears are 4-bit nf4 with double quant \(compute dtype bfloat16\), stored: the export holds their dequantized weights with the adapter merged in/);
  assert.ok(result.logits, 'the probe logits were checked against the dequantized base + adapter');

  const golden = readSafetensors(join(NF4, 'golden.safetensors'));
  const stored = readSafetensors(join(NF4, 'model.safetensors'));
  const ours = readSafetensors(join(out, 'model.safetensors'));
  let adapted = 0;
  for (const [name, t] of ours) {
    const dequantized = golden.get(`dequantized.${name}`);
    if (!dequantized) {
      assert.equal(Buffer.compare(bytesOf(t.data), bytesOf(stored.get(name)!.data)), 0, `${name} is the checkpoint's own`);
      continue;
    }
    assert.equal(t.dtype, 'BF16', name);
    const d = delta(adapter, name);
    if (d) adapted++;
    const sum = toFloat32(dequantized).map((w, i) => w + (d ? d[i]! : 0));
    const expected = toFloat32(fromFloat32(sum, t.shape, 'BF16'));
    const actual = toFloat32(t);
    let differ = 0;
    for (let i = 0; i < sum.length; i++) {
      if (actual[i] === expected[i]) continue;
      differ++;
      assert.ok(Math.abs(actual[i]! - expected[i]!) <= 2 ** -7 * Math.abs(expected[i]!), `${name}[${i}]: ${actual[i]}, expected ${expected[i]}`);
    }
    assert.ok(differ <= sum.length / 1000, `${name}: ${differ} of ${sum.length} elements differ from dequantized + delta in bf16`);
  }
  assert.equal(adapted, result.adapted);
  assert.ok(adapted > 0);
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(config.quantization_config, undefined);
  assert.equal(config.dtype, 'bfloat16');

  const onLoad = join(work, 'bf16-load-in-4bit-hf');
  const note2 = logged();
  await exportHf({ baseModel: fixtureDir('llama-mha-bf16'), loraWeights: adapter, outputDir: onLoad, backend: new JsBackend(), quantize: NF4_DQ, log: note2.log });
  assert.match(note2.lines[0]!, /14 decoder linears are 4-bit nf4 with double quant .*, quantized on load: the export holds their dequantized weights/);
  const again = readSafetensors(join(onLoad, 'model.safetensors'));
  assert.deepEqual([...again.keys()], [...ours.keys()]);
  for (const [name, t] of ours) assert.equal(Buffer.compare(bytesOf(again.get(name)!.data), bytesOf(t.data)), 0, name);
});

test('export-gguf q8_0 requantizes the merged dequantized weights; export-state-dict from the int8 checkpoint writes bf16', async (t) => {
  if (!needShared(t, 'fixtures', 'quant')) return;
  const adapter = await after3Adapter();
  const gguf = join(work, 'nf4.gguf');
  const note = logged();
  await exportGguf({ baseModel: await nf4WithTokenizer(), loraWeights: adapter, outfile: gguf, outtype: 'q8_0', log: note.log });
  assert.equal(note.lines.length, 1);
  const golden = readSafetensors(join(NF4, 'golden.safetensors'));
  const name = 'model.layers.1.self_attn.q_proj.weight';
  const d = delta(adapter, name)!;
  const merged = toFloat32(golden.get(`dequantized.${name}`)!).map((w, i) => w + d[i]!);
  const file = GgufFile.open(gguf);
  try {
    const back = toFloat32(readGgufAsHf(file, loadLlamaConfig(NF4), name));
    for (let b = 0; b < merged.length; b += 32) {
      const block = merged.subarray(b, b + 32);
      const step = Math.max(...block.map(Math.abs)) / 127;
      const bound = step * (0.5 + 127 * 2 ** -11); // half a step, plus the f16 rounding of the block scale times the code
      for (let i = 0; i < block.length; i++) assert.ok(Math.abs(back[b + i]! - block[i]!) <= bound, `${name}[${b + i}]: ${back[b + i]}, merged ${block[i]}`);
    }
  } finally {
    file.close();
  }

  const meta = join(work, 'int8-meta');
  const note8 = logged();
  await exportStateDict({ baseModel: INT8, loraWeights: adapter, outputDir: meta, log: note8.log });
  assert.match(note8.lines[0]!, /^the base's 14 decoder linears are 8-bit LLM\.int8 \(outlier threshold 6\), stored: /);
  const pth = TorchFile.open(join(meta, 'consolidated.00.pth'));
  try {
    assert.equal(pth.read('layers.0.attention.wq.weight').dtype, 'BF16');
  } finally {
    pth.close();
  }
});
