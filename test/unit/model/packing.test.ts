// --packing changes the layout, not the numbers: the same examples packed into rows (segments kept apart,
// positions restarting per example) give the loss sum, the counted tokens and every LoRA gradient of the same
// examples collated the usual way (left padded, one per row), up to float32 rounding, on every backend here.
// Labels mask each example's first token (a prompt), so left padding adds no pad -> first-token target (pack.ts).
// Also what packing adds to the activation plan (the memory planner prices it). Tolerance: loss sum 1e-5 relative; each gradient element within 1e-4 of the tensor's largest |gradient|.
// The two sides sum the same terms in other orders and RoPE rotates by other absolute positions (the scores
// depend only on relative ones): float32 rounding differences, measured 7e-9 (loss) and 1.1e-6 (gradients)
// on js and cpu; attention across examples (segments ignored) fails it by orders of magnitude.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseLlamaConfig } from '../../../src/arch/llama-config.ts';
import { collate } from '../../../src/data/collate.ts';
import { packedBatches } from '../../../src/data/pack.ts';
import { IGNORE_INDEX } from '../../../src/data/tokenize.ts';
import { Rng } from '../../../src/engine/random.ts';
import { activationPlan, bufferBytes } from '../../../src/model/activations.ts';
import type { TokenBatch } from '../../../src/model/batch.ts';
import { forwardBackward, reserveActivations } from '../../../src/model/compute.ts';
import { loadModel } from '../../../src/model/load.ts';
import { loadLoraAdapter } from '../../../src/model/lora-io.ts';
import { loraParameters } from '../../../src/model/lora.ts';
import { testBackends } from '../../helpers/backends.ts';
import { fixtureDir } from '../../helpers/golden.ts';
import { needShared } from '../../helpers/shared.ts';

const LOSS_RTOL = 1e-5, GRAD_TOL = 1e-4;
const ROW = 24;

/** Examples of lengths 3..20 with random ids; each one's first `prompt` labels masked. */
function examples(vocab: number): { input_ids: number[]; labels: number[] }[] {
  const rng = new Rng(99);
  return [[5, 2], [9, 4], [13, 1], [7, 3], [20, 6], [3, 1], [11, 5]].map(([n, prompt]) => {
    const ids = Array.from({ length: n! }, () => 3 + rng.int(vocab - 3));
    return { input_ids: ids, labels: ids.map((id, t) => (t < prompt! ? IGNORE_INDEX : id)) };
  });
}

async function run(backend: ReturnType<typeof testBackends>[number], packed: boolean) {
  const be = backend.make();
  const m = await loadModel(be, fixtureDir('llama-gqa'));
  const adapter = loadLoraAdapter(be, m.config, `${fixtureDir('llama-gqa')}/adapter`);
  const lora = { adapter, dropout: 0, seed: 7 };
  const ex = examples(m.config.vocabSize);
  const batches: TokenBatch[] = packed ? packedBatches(ex, ROW, 2, 0) : [collate(ex, { padId: 0 })];
  reserveActivations(m, batches[0]!.B, batches[0]!.T, lora, { checkpointing: false, packed });
  let lossSum = 0, tokens = 0;
  for (const b of batches) {
    const r = await forwardBackward(m, b, lora, 1 / 40);
    lossSum += r.lossSum;
    tokens += r.tokens;
  }
  const grads = await Promise.all(loraParameters(adapter).map(async (p) => [p.name, (await be.download(p.grad)) as Float32Array] as const));
  return { lossSum, tokens, grads, rows: batches.reduce((n, b) => n + b.B, 0) };
}

for (const backend of testBackends()) {
  test(`a packed batch gives the loss and LoRA gradients of the same examples unpacked on ${backend.name}`, async (t) => {
    if (!needShared(t, 'fixtures', 'models', 'llama-gqa')) return;
    const unpacked = await run(backend, false);
    const packed = await run(backend, true);
    assert.equal(unpacked.rows, 7);
    assert.equal(packed.rows, 3, '68 tokens in rows of 24');
    assert.equal(packed.tokens, unpacked.tokens);
    assert.equal(packed.tokens, 68 - 22, 'every label but the prompts (each prompt holds its example\'s first token)');
    const lossErr = Math.abs(packed.lossSum - unpacked.lossSum) / Math.abs(unpacked.lossSum);
    assert.ok(lossErr <= LOSS_RTOL, `loss sum ${packed.lossSum} vs ${unpacked.lossSum} (rel ${lossErr})`);
    let worst = 0;
    for (const [i, [name, want]] of unpacked.grads.entries()) {
      const got = packed.grads[i]![1];
      const scale = want.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
      assert.ok(scale > 0, `${name} has a gradient`);
      for (let j = 0; j < want.length; j++) {
        const err = Math.abs(got[j]! - want[j]!) / scale;
        worst = Math.max(worst, err);
        assert.ok(err <= GRAD_TOL, `${name}[${j}]: packed ${got[j]} vs unpacked ${want[j]} (max |g| ${scale})`);
      }
    }
    t.diagnostic(`loss rel err ${lossErr.toExponential(2)}, worst gradient err / max|g| ${worst.toExponential(2)}`);
  });
}

test('packed activations add only the segment ids (B, T) and per-token RoPE tables (N, HD/2) to the plan', () => {
  const cfg = parseLlamaConfig({
    model_type: 'llama', hidden_size: 256, intermediate_size: 688, num_hidden_layers: 6, num_attention_heads: 8, num_key_value_heads: 4,
    vocab_size: 32000, rms_norm_eps: 1e-5, max_position_embeddings: 1024,
  }, 'tiny/config.json');
  const B = 4, T = 256, HD = 32, s = { withGrad: true, loraTargets: ['q_proj', 'v_proj'] as const, loraR: 8, checkpointing: false };
  const bytes = (packed: boolean) => activationPlan(cfg, B, T, { ...s, packed }).reduce((n, b) => n + bufferBytes(b), 0);
  assert.equal(bytes(true) - bytes(false), B * T * 4 + 2 * (B * T - T) * (HD / 2) * 4);
});
