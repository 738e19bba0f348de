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

/** One training measurement: a shape on a backend, micro batch mb x seq tokens per step. */
export interface TrainCase {
  shape: string;
  backend: 'js' | 'cpu' | 'torch';
  weightDtype: 'f32' | 'bf16' | 'f16';
  mb: number;
  seq: number;
  warmup: number;
  steps: number;
}
