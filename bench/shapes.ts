// The model shapes the CPU benchmarks use: those of ../shared/bench/hf_peft_cpu_baseline.py (HF config
// keys), so the PyTorch reference measures the same model. Not a model zoo.

export interface BenchShape {
  hf: {
    vocab_size: number;
    hidden_size: number;
    intermediate_size: number;
    num_hidden_layers: number;
    num_attention_heads: number;
    num_key_value_heads: number;
    tie_word_embeddings: boolean;
  };
}

export const SHAPES: Record<string, BenchShape> = {
  'tiny-english-12m': {
    hf: { vocab_size: 32000, hidden_size: 256, intermediate_size: 688, num_hidden_layers: 6, num_attention_heads: 8, num_key_value_heads: 4, tie_word_embeddings: true },
  },
  'mid-134m': {
    hf: { vocab_size: 32000, hidden_size: 768, intermediate_size: 2048, num_hidden_layers: 12, num_attention_heads: 12, num_key_value_heads: 12, tie_word_embeddings: false },
  },
};

/** LLaMA-7B and -13B (Touvron et al. 2023; huggyllama/llama-*'s config.json), for the large-model benchmarks only. */
export const LLAMA_SHAPES: Record<string, BenchShape> = {
  'llama-7b': {
    hf: { vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, tie_word_embeddings: false },
  },
  'llama-13b': {
    hf: { vocab_size: 32000, hidden_size: 5120, intermediate_size: 13824, num_hidden_layers: 40, num_attention_heads: 40, num_key_value_heads: 40, tie_word_embeddings: false },
  },
};

/** One training measurement: a shape on a backend, micro batch mb x seq tokens per step. */
export interface TrainCase {
  shape: string;
  backend: 'js' | 'cpu' | 'torch';
  weightDtype: 'f32' | 'bf16' | 'f16';
  mb: number;
  seq: number;
  warmup: number;
  steps: number;
  /** Gradient checkpointing (our backends only). */
  checkpointing?: boolean;
  /** Activations' storage (--activation_dtype; our backends only); default f32. */
  activationDtype?: 'auto' | 'f32' | 'bf16' | 'f16'; // auto: what finetune picks (bf16 for bf16 weights on cpu)
  /** What bf16 weights' products compute in (--compute_dtype; cpu only); default f32. */
  computeDtype?: 'f32' | 'bf16';
  /** Load the model from this HF folder (its shape is `shape`) instead of making random weights in memory. */
  modelDir?: string;
  /** With modelDir: quantize its decoder linears on load (QLoRA's NF4 with double quant, or LLM.int8). */
  quantize?: 'nf4' | 'int8';
}
