"""The PyTorch reference for bench/cpu-backend.ts: the same LLaMA LoRA training step written out by hand
in plain torch (no transformers/PEFT, which Debian does not package): RMSNorm, rotate-half RoPE, causal GQA
attention, SwiGLU, LoRA (r=8, alpha=16, dropout 0.05) on q_proj/v_proj, float32, cross-entropy,
clip_grad_norm_(1.0), torch.optim.AdamW. Random weights; prints one JSON line like lora-train-case.ts.

    python3 bench/torch_lora_step.py '<json: {shape, hf: {...}, mb, seq, warmup, steps, threads}>'
"""
import json, math, resource, sys, time

import torch
import torch.nn.functional as F

c = json.loads(sys.argv[1])
hf = c["hf"]
torch.set_num_threads(c["threads"])
torch.manual_seed(0)
V, C, F_, L = hf["vocab_size"], hf["hidden_size"], hf["intermediate_size"], hf["num_hidden_layers"]
NH, NKV = hf["num_attention_heads"], hf["num_key_value_heads"]
HD = C // NH
R, ALPHA, DROP = 8, 16, 0.05


def w(*shape, std=0.02):
    return torch.randn(*shape) * std


class Lora(torch.nn.Module):
    def __init__(self, inf, outf):
        super().__init__()
        self.A = torch.nn.Parameter(torch.empty(R, inf).uniform_(-1 / math.sqrt(inf), 1 / math.sqrt(inf)))
        self.B = torch.nn.Parameter(torch.zeros(outf, R))

    def forward(self, x):
        return F.dropout(x, DROP, self.training) @ self.A.t() @ self.B.t() * (ALPHA / R)


class Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.n1, self.n2 = 1 + w(C, std=0.1), 1 + w(C, std=0.1)
        self.q, self.k, self.v, self.o = w(NH * HD, C), w(NKV * HD, C), w(NKV * HD, C), w(C, NH * HD)
        self.g, self.u, self.d = w(F_, C), w(F_, C), w(C, F_)
        self.lq, self.lv = Lora(C, NH * HD), Lora(C, NKV * HD)


def rms(x, weight):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight


def rope(x, cos, sin):  # x (B, H, T, HD)
    x1, x2 = x[..., : HD // 2], x[..., HD // 2 :]
    return x * cos + torch.cat((-x2, x1), -1) * sin


def layer_forward(l, x, cos, sin, causal):
    B, T, _ = x.shape
    h = rms(x, l.n1)
    q = (h @ l.q.t() + l.lq(h)).view(B, T, NH, HD).transpose(1, 2)
    k = (h @ l.k.t()).view(B, T, NKV, HD).transpose(1, 2)
    v = (h @ l.v.t() + l.lv(h)).view(B, T, NKV, HD).transpose(1, 2)
    q, k = rope(q, cos, sin), rope(k, cos, sin)
    k, v = k.repeat_interleave(NH // NKV, 1), v.repeat_interleave(NH // NKV, 1)
    att = (q @ k.transpose(-1, -2)) / math.sqrt(HD) + causal
    y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
    x = x + y @ l.o.t()
    h = rms(x, l.n2)
    return x + (F.silu(h @ l.g.t()) * (h @ l.u.t())) @ l.d.t()


layers = torch.nn.ModuleList([Layer() for _ in range(L)])
embed = w(V, C)
head = embed if hf["tie_word_embeddings"] else w(V, C)
norm = 1 + w(C, std=0.1)
params = [p for p in layers.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=3e-4)
T = c["seq"]
ids = torch.randint(3, V, (c["mb"], T))
targets = torch.cat((ids[:, 1:], torch.full((c["mb"], 1), -100)), 1).reshape(-1)  # labels shifted left
inv = 1.0 / (10000 ** (torch.arange(0, HD, 2).float() / HD))
ang = torch.outer(torch.arange(T).float(), inv)
cos, sin = torch.cat((ang, ang), -1).cos(), torch.cat((ang, ang), -1).sin()
causal = torch.full((T, T), float("-inf")).triu(1)


def step():
    x = embed[ids]
    for l in layers:
        x = layer_forward(l, x, cos, sin, causal)
    logits = rms(x, norm) @ head.t()
    loss = F.cross_entropy(logits.view(-1, V), targets)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    opt.zero_grad()
    return loss.item()


for _ in range(c["warmup"]):
    step()
t = time.perf_counter()
for _ in range(c["steps"]):
    loss = step()
dt = time.perf_counter() - t
print(json.dumps(dict(shape=c["shape"], backend="torch", weightDtype="f32", mb=c["mb"], seq=T, warmup=c["warmup"], steps=c["steps"],
                      details=f"torch {torch.__version__}, {torch.get_num_threads()} threads", loss=round(loss, 4),
                      tokens_per_s=round(c["mb"] * T * c["steps"] / dt, 1), step_s=round(dt / c["steps"], 3),
                      peak_rss_gib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2))), flush=True)
