# Reference rope tables for rope.test.ts: transformers' rope formulas evaluated with torch in float32.
# Run: python3 test/unit/formats/rope-reference.py > test/unit/formats/rope-reference.json
import torch, math, json
def default(base, dim):
    return 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
def llama3(inv, factor, low, high, old):
    lw = old / low; hw = old / high
    wavelen = 2 * math.pi / inv
    invl = torch.where(wavelen > lw, inv / factor, inv)
    sf = (old / wavelen - low) / (high - low)
    smoothed = (1 - sf) * invl / factor + sf * invl
    med = ~(wavelen < hw) * ~(wavelen > lw)
    return torch.where(med, smoothed, invl)
def dynamic(base, dim, factor, maxpos, seq):
    seq = max(seq, maxpos)
    base = base * ((factor * seq / maxpos) - (factor - 1)) ** (dim / (dim - 2))
    return default(base, dim)
out = {
 'made_by': 'rope-reference.py (transformers formulas in torch 1.13, float32)',
 'default_1e4_16': default(10000.0, 16).tolist(),
 'default_5e5_128': default(500000.0, 128).tolist(),
 'linear_1e4_32_f4': (default(10000.0, 32) / 4.0).tolist(),
 'llama3_5e5_16': llama3(default(500000.0, 16), 8.0, 1.0, 4.0, 64).tolist(),
 'llama3_5e5_128': llama3(default(500000.0, 128), 8.0, 1.0, 4.0, 8192).tolist(),
 'dynamic_1e4_64_f2_2048_5000': dynamic(10000.0, 64, 2.0, 2048, 5000).tolist(),
}
inv = llama3(default(500000.0, 16), 8.0, 1.0, 4.0, 64)
pos = torch.tensor([0, 1, 5, 39, 1000, 4095], dtype=torch.float32)
freqs = pos[:, None] * inv[None, :]
out['cos_llama3'] = freqs.cos().flatten().tolist()
out['sin_llama3'] = freqs.sin().flatten().tolist()
print(json.dumps(out, indent=1))
