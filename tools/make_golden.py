#!/usr/bin/env python3
"""Writes the PyTorch golden fixtures under tests/golden/ (dev-time only; `make test` reads
the committed files and never needs PyTorch).

    /usr/bin/python3 tools/make_golden.py            # needs torch (tested with 1.13) and numpy
    python3 tools/make_golden.py --check-transformers
        # optional: compares the committed model fixtures with transformers itself
        # (made with transformers 4.38.2 in a venv with --system-site-packages)

Outputs (described in tests/golden/README.md):
    tests/golden/ops.safetensors                    op inputs, outputs and input gradients
    tests/golden/gpt2_tiny/{config.json, model.safetensors, golden.safetensors}
    tests/golden/llama_tiny/{config.json, model.safetensors, golden.safetensors}
(The QLoRA goldens, tests/golden/quant/, come from bitsandbytes: tools/make_golden_quant.py.)

Every reference value is computed in float64 from float32 inputs (so the inputs stored in
the fixture are exactly the ones the reference used) and stored rounded to float32. The
models are written in plain torch, line by line after Hugging Face transformers'
GPT2LMHeadModel (models/gpt2/modeling_gpt2.py) and LlamaForCausalLM
(models/llama/modeling_llama.py), so the fixtures don't need transformers installed.

Generation is deterministic: each fixture draws from its own seeded torch.Generator, and
torch runs single-threaded so float64 reductions have one order.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests", "golden")
FORMAT = {"format": "sllm-golden", "version": "1"}
REF = torch.float64  # the dtype of every reference computation


# ---------------------------------------------------------------------------------------
# safetensors: [u64 LE header length][JSON header][data], tensors back to back, no holes.
# The header is padded with spaces to a multiple of 8 bytes so every tensor is aligned to its
# element size (all our dtypes are 4 bytes wide and written in order).

DTYPES = {torch.float32: "F32", torch.int32: "I32"}


def safetensors_bytes(tensors, metadata):
    assert sys.byteorder == "little"
    header = {"__metadata__": {k: str(v) for k, v in metadata.items()}}
    blobs, offset = [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        data = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def read_safetensors(path):
    """Independent re-read for the self-check: returns ({name: tensor}, metadata)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    metadata = header.pop("__metadata__", {})
    data = raw[8 + n :]
    kinds = {"F32": torch.float32, "I32": torch.int32}
    out, covered = {}, 0
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, end = e["data_offsets"]
        assert b == covered, f"{path}: hole before {name}"
        covered = end
        t = torch.frombuffer(bytearray(data[b:end]), dtype=kinds[e["dtype"]]) if end > b else torch.empty(0)
        out[name] = t.reshape(e["shape"])
    assert covered == len(data), f"{path}: data section not covered exactly"
    return out, metadata


def write_safetensors(path, tensors, metadata):
    for name, t in tensors.items():
        assert t.dtype in DTYPES, f"{name}: store float32 or int32, got {t.dtype}"
    raw = safetensors_bytes(tensors, metadata)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(raw)
    os.replace(tmp, path)
    back, meta = read_safetensors(path)  # self-check: bit-identical round trip
    assert list(back) == list(tensors) and meta == {k: str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        assert back[name].dtype == t.dtype and torch.equal(back[name], t.detach()), name
    print(f"wrote {os.path.relpath(path, ROOT)}: {len(tensors)} tensors, {len(raw)} bytes")


def f32(t):
    return t.detach().to(torch.float32).contiguous()


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    print(f"wrote {os.path.relpath(path, ROOT)}")


# ---------------------------------------------------------------------------------------
# Reference formulas shared by the op fixture and the models.


def gelu_tanh(x):  # "gelu_new" (GPT-2; Hendrycks & Gimpel 2016, eq. for the tanh approximation)
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gelu_exact(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def rms_norm(x, weight, eps):  # LlamaRMSNorm: x * rsqrt(mean(x²) + eps) * weight
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rope_cos_sin(positions, head_dim, theta):
    """LlamaRotaryEmbedding: inv_freq = 1 / theta^(arange(0, HD, 2) / HD), angle = pos * inv_freq.
    Returns cos, sin of shape (len(positions), HD/2) in float64."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=REF) / head_dim))
    angles = positions.to(REF)[:, None] * inv_freq[None, :]
    return torch.cos(angles), torch.sin(angles)


def rotate_half(x):  # HF Llama: pairs (i, i + HD/2)
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x, cos, sin):
    """x (B, NH, T, HD); cos, sin (T, HD/2) duplicated to (T, HD) as HF's cat((freqs, freqs))."""
    cos = torch.cat((cos, cos), dim=-1).to(x.dtype)
    sin = torch.cat((sin, sin), dim=-1).to(x.dtype)
    return x * cos + rotate_half(x) * sin


def causal_attention(q, k, v, scale, q_offset=0):
    """q (B, NH, T, HD), k, v (B, NKV, Tk, HD). GQA by repeating each kv head NH/NKV times
    (HF repeat_kv); query t sees keys [0, q_offset + t]."""
    n_rep = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(n_rep, dim=1)
    v = v.repeat_interleave(n_rep, dim=1)
    T, Tk = q.shape[2], k.shape[2]
    scores = (q @ k.transpose(-1, -2)) * scale
    allowed = torch.arange(Tk)[None, :] <= (q_offset + torch.arange(T))[:, None]
    scores = scores.masked_fill(~allowed, float("-inf"))
    return scores.softmax(dim=-1) @ v


# ---------------------------------------------------------------------------------------
# Op fixture: for each op, inputs, the output, a random upstream gradient `dout` and the
# gradients of every float input: "<case>.<input>", "<case>.out", "<case>.dout", "<case>.d<input>".


class OpFixture:
    def __init__(self, seed):
        self.gen = torch.Generator().manual_seed(seed)
        self.tensors = {}
        self.metadata = dict(FORMAT, kind="ops", reference_dtype="float64", seed=seed)

    def randn(self, *shape, scale=1.0, offset=0.0):
        return f32(torch.randn(*shape, generator=self.gen) * scale + offset)

    def add(self, case, fn, inputs, constants=None, params=None):
        """inputs: {name: f32 tensor} differentiated; constants: {name: i32 tensor} not."""
        constants = constants or {}
        leaves = {n: t.to(REF).requires_grad_(True) for n, t in inputs.items()}
        out = fn(**leaves, **constants)
        dout = self.randn(*out.shape)
        out.backward(dout.to(REF))
        for n, t in inputs.items():
            self.tensors[f"{case}.{n}"] = t
        for n, t in constants.items():
            self.tensors[f"{case}.{n}"] = t
        self.tensors[f"{case}.out"] = f32(out)
        self.tensors[f"{case}.dout"] = dout
        for n, leaf in leaves.items():
            self.tensors[f"{case}.d{n}"] = f32(leaf.grad)
        for k, v in (params or {}).items():
            self.metadata[f"{case}.{k}"] = v


def make_ops_fixture():
    fx = OpFixture(seed=1234)
    r = fx.randn

    fx.add("matmul", lambda a, b: a @ b, {"a": r(2, 5, 7), "b": r(2, 7, 3)})
    # a (2, 3, 8) @ bᵀ with a shared 2-D b (5, 8): ops::matmul(a, b, false, true)
    fx.add("matmul_nt", lambda a, b: a @ b.T, {"a": r(2, 3, 8), "b": r(5, 8)})
    # aᵀ @ b with a (7, 4), b (7, 5): ops::matmul(a, b, true, false)
    fx.add("matmul_tn", lambda a, b: a.T @ b, {"a": r(7, 4), "b": r(7, 5)})
    fx.add("linear", lambda x, weight, bias: x @ weight.T + bias,
           {"x": r(2, 3, 8), "weight": r(5, 8, scale=0.5), "bias": r(5, scale=0.5)})
    fx.add("layernorm", lambda x, weight, bias: F.layer_norm(x, (x.shape[-1],), weight, bias, 1e-5),
           {"x": r(3, 4, 16, scale=2.0, offset=0.5), "weight": r(16, scale=0.2, offset=1.0), "bias": r(16, scale=0.1)},
           params={"eps": "1e-5"})
    fx.add("rmsnorm", lambda x, weight: rms_norm(x, weight, 1e-5),
           {"x": r(3, 16, scale=2.0, offset=0.5), "weight": r(16, scale=0.2, offset=1.0)}, params={"eps": "1e-5"})
    fx.add("gelu_tanh", gelu_tanh, {"x": r(4, 33, scale=3.0)})
    fx.add("gelu_exact", gelu_exact, {"x": r(4, 33, scale=3.0)})
    fx.add("silu", lambda x: x * torch.sigmoid(x), {"x": r(4, 33, scale=3.0)})
    fx.add("swiglu", lambda gate, up: gate * torch.sigmoid(gate) * up, {"gate": r(4, 10, scale=2.0), "up": r(4, 10)})
    fx.add("softmax", lambda x: x.softmax(-1), {"x": r(3, 4, 10, scale=3.0)})
    fx.add("log_softmax", lambda x: x.log_softmax(-1), {"x": r(3, 4, 10, scale=3.0)})

    targets = torch.randint(0, 11, (2, 5), generator=fx.gen, dtype=torch.int32)
    targets[0, 1] = targets[1, 3] = targets[1, 4] = -100
    fx.add("cross_entropy",
           lambda logits, targets: F.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1).long(),
                                                   ignore_index=-100).reshape(1),
           {"logits": r(2, 5, 11, scale=2.0)}, constants={"targets": targets}, params={"ignore_index": "-100"})

    ids = torch.tensor([[3, 0, 8, 3, 5], [8, 8, 1, 3, 0]], dtype=torch.int32)  # repeats: gradients add
    fx.add("embedding", lambda table, ids: table[ids.long()], {"table": r(9, 4)}, constants={"ids": ids})

    # Causal GQA attention on the (B, T, NH*HD) layout of ops::attention.
    def attention(NH, NKV, q_offset, scale):
        def fn(q, k, v):
            B, T, Tk = q.shape[0], q.shape[1], k.shape[1]
            HD = q.shape[2] // NH
            qh = q.reshape(B, T, NH, HD).transpose(1, 2)
            kh = k.reshape(B, Tk, NKV, HD).transpose(1, 2)
            vh = v.reshape(B, Tk, NKV, HD).transpose(1, 2)
            s = scale if scale > 0 else 1.0 / math.sqrt(HD)
            return causal_attention(qh, kh, vh, s, q_offset).transpose(1, 2).reshape(B, T, NH * HD)
        return fn

    fx.add("attention", attention(4, 2, 0, 0.0), {"q": r(2, 7, 32), "k": r(2, 7, 16), "v": r(2, 7, 16)},
           params={"n_head": "4", "n_kv_head": "2", "q_offset": "0", "scale": "0"})
    # Decoding-style: 3 queries at positions 4..6 over 7 keys, one kv head, explicit scale.
    fx.add("attention_offset", attention(4, 1, 4, 0.3), {"q": r(2, 3, 32), "k": r(2, 7, 8), "v": r(2, 7, 8)},
           params={"n_head": "4", "n_kv_head": "1", "q_offset": "4", "scale": "0.3"})

    # RoPE, HF half-split (rotate_half), on (B, T, NH*HD) at positions pos0 + t.
    def rope(NH, pos0, theta):
        def fn(x):
            B, T, C = x.shape
            HD = C // NH
            cos, sin = rope_cos_sin(torch.arange(pos0, pos0 + T), HD, theta)
            return apply_rope(x.reshape(B, T, NH, HD).transpose(1, 2), cos, sin).transpose(1, 2).reshape(B, T, C)
        return fn

    for case, pos0 in (("rope", 0), ("rope_offset", 3)):
        fx.add(case, rope(2, pos0, 10000.0), {"x": r(2, 6, 16)},
               params={"n_head": "2", "pos0": str(pos0), "theta": "10000.0"})
        cos, sin = rope_cos_sin(torch.arange(pos0 + 6), 8, 10000.0)  # the (T_max, HD/2) tables
        fx.tensors[f"{case}.cos"], fx.tensors[f"{case}.sin"] = f32(cos), f32(sin)

    write_safetensors(os.path.join(GOLDEN, "ops.safetensors"), fx.tensors, fx.metadata)


# ---------------------------------------------------------------------------------------
# Tiny models. Parameters are created in float32 (what model.safetensors stores) and used
# in float64 for the reference.

ADAMW = {"lr": 1e-2, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1, "steps": 10}
B, T = 2, 16


def gpt2_config():
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": 96,
        "n_positions": 32,
        "n_ctx": 32,
        "n_embd": 32,
        "n_layer": 2,
        "n_head": 4,
        "n_inner": None,
        "layer_norm_epsilon": 1e-5,
        "activation_function": "gelu_new",
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "scale_attn_weights": True,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
    }


def llama_config():
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": 96,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-5,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "attention_bias": False,
        "mlp_bias": False,
        "attention_dropout": 0.0,
        "rope_scaling": None,
        "torch_dtype": "float32",
    }


# Weights and embeddings are N(0, 0.2²), about 1/sqrt(n_embd), not HF's initializer_range
# 0.02: at 0.02 every pre-activation of these 32-wide models is ~0.1, where gelu_new and exact
# GELU differ by 2e-6 of the logits and a 1/HD instead of 1/sqrt(HD) attention scale moves
# them by 3e-4, both lost in f32 noise. At 0.2 the nonlinearities work in their curved
# range: the GELU swap moves GPT-2's logits by 3e-4 of their largest value and the scale bug
# by 0.75 (measured when the fixtures were made; see tests/golden/README.md).
INIT_STD = 0.2


class Init:
    """Random parameters: weights N(0, INIT_STD²); norm weights 1 + N(0, 0.2²) and biases
    N(0, 0.1²), so that a test which ignores a norm weight or a bias (or swaps two) fails."""

    def __init__(self, gen):
        self.gen = gen
        self.params = {}  # HF name -> float32 tensor, in HF's order
        self.decay = []   # names of 2-D Linear/Conv1D weights (AdamW weight decay group)

    def weight(self, name, shape, decay):
        self.params[name] = f32(torch.randn(*shape, generator=self.gen) * INIT_STD)
        if decay:
            self.decay.append(name)

    def norm(self, name, shape):
        self.params[name] = f32(1.0 + 0.2 * torch.randn(*shape, generator=self.gen))

    def bias(self, name, shape):
        self.params[name] = f32(0.1 * torch.randn(*shape, generator=self.gen))


def gpt2_params(cfg, gen):
    C, V, L = cfg["n_embd"], cfg["vocab_size"], cfg["n_layer"]
    p = Init(gen)
    p.weight("transformer.wte.weight", (V, C), decay=False)
    p.weight("transformer.wpe.weight", (cfg["n_positions"], C), decay=False)
    for l in range(L):
        h = f"transformer.h.{l}."
        p.norm(h + "ln_1.weight", (C,))
        p.bias(h + "ln_1.bias", (C,))
        p.weight(h + "attn.c_attn.weight", (C, 3 * C), decay=True)  # Conv1D: (in, out)
        p.bias(h + "attn.c_attn.bias", (3 * C,))
        p.weight(h + "attn.c_proj.weight", (C, C), decay=True)
        p.bias(h + "attn.c_proj.bias", (C,))
        p.norm(h + "ln_2.weight", (C,))
        p.bias(h + "ln_2.bias", (C,))
        p.weight(h + "mlp.c_fc.weight", (C, 4 * C), decay=True)
        p.bias(h + "mlp.c_fc.bias", (4 * C,))
        p.weight(h + "mlp.c_proj.weight", (4 * C, C), decay=True)
        p.bias(h + "mlp.c_proj.bias", (C,))
    p.norm("transformer.ln_f.weight", (C,))
    p.bias("transformer.ln_f.bias", (C,))
    return p


def gpt2_forward(cfg, p, ids):
    """GPT2LMHeadModel.forward without dropout: logits (B, T, V)."""
    C, NH, eps = cfg["n_embd"], cfg["n_head"], cfg["layer_norm_epsilon"]
    HD = C // NH
    Bn, Tn = ids.shape
    ln = lambda x, name: F.layer_norm(x, (C,), p[name + ".weight"], p[name + ".bias"], eps)
    conv1d = lambda x, name: x @ p[name + ".weight"] + p[name + ".bias"]  # Conv1D: x W + b
    x = p["transformer.wte.weight"][ids] + p["transformer.wpe.weight"][torch.arange(Tn)]
    for l in range(cfg["n_layer"]):
        h = f"transformer.h.{l}."
        q, k, v = conv1d(ln(x, h + "ln_1"), h + "attn.c_attn").split(C, dim=-1)
        heads = lambda t: t.reshape(Bn, Tn, NH, HD).transpose(1, 2)
        y = causal_attention(heads(q), heads(k), heads(v), 1.0 / math.sqrt(HD))
        x = x + conv1d(y.transpose(1, 2).reshape(Bn, Tn, C), h + "attn.c_proj")
        m = gelu_tanh(conv1d(ln(x, h + "ln_2"), h + "mlp.c_fc"))
        x = x + conv1d(m, h + "mlp.c_proj")
    x = ln(x, "transformer.ln_f")
    return x @ p["transformer.wte.weight"].T  # tied lm_head


def llama_params(cfg, gen):
    C, V, L, H = cfg["hidden_size"], cfg["vocab_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]
    HD = C // cfg["num_attention_heads"]
    KV = cfg["num_key_value_heads"] * HD
    p = Init(gen)
    p.weight("model.embed_tokens.weight", (V, C), decay=False)
    for l in range(L):
        h = f"model.layers.{l}."
        p.norm(h + "input_layernorm.weight", (C,))
        p.weight(h + "self_attn.q_proj.weight", (C, C), decay=True)  # nn.Linear: (out, in)
        p.weight(h + "self_attn.k_proj.weight", (KV, C), decay=True)
        p.weight(h + "self_attn.v_proj.weight", (KV, C), decay=True)
        p.weight(h + "self_attn.o_proj.weight", (C, C), decay=True)
        p.norm(h + "post_attention_layernorm.weight", (C,))
        p.weight(h + "mlp.gate_proj.weight", (H, C), decay=True)
        p.weight(h + "mlp.up_proj.weight", (H, C), decay=True)
        p.weight(h + "mlp.down_proj.weight", (C, H), decay=True)
    p.norm("model.norm.weight", (C,))
    p.weight("lm_head.weight", (V, C), decay=True)  # an nn.Linear: decayed
    return p


def llama_forward(cfg, p, ids):
    """LlamaForCausalLM.forward: logits (B, T, V)."""
    C, NH, NKV, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["rms_norm_eps"]
    HD = C // NH
    Bn, Tn = ids.shape
    lin = lambda x, name: x @ p[name + ".weight"].T
    cos, sin = rope_cos_sin(torch.arange(Tn), HD, cfg["rope_theta"])
    x = p["model.embed_tokens.weight"][ids]
    for l in range(cfg["num_hidden_layers"]):
        h = f"model.layers.{l}."
        a = rms_norm(x, p[h + "input_layernorm.weight"], eps)
        q = lin(a, h + "self_attn.q_proj").reshape(Bn, Tn, NH, HD).transpose(1, 2)
        k = lin(a, h + "self_attn.k_proj").reshape(Bn, Tn, NKV, HD).transpose(1, 2)
        v = lin(a, h + "self_attn.v_proj").reshape(Bn, Tn, NKV, HD).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        y = causal_attention(q, k, v, 1.0 / math.sqrt(HD))
        x = x + lin(y.transpose(1, 2).reshape(Bn, Tn, C), h + "self_attn.o_proj")
        m = rms_norm(x, p[h + "post_attention_layernorm.weight"], eps)
        gate, up = lin(m, h + "mlp.gate_proj"), lin(m, h + "mlp.up_proj")
        x = x + lin(F.silu(gate) * up, h + "mlp.down_proj")
    x = rms_norm(x, p["model.norm.weight"], eps)
    return lin(x, "lm_head")


def loss_fn(logits, targets):
    """Mean cross-entropy over targets != -100. targets[b, t] is the label of logits[b, t]
    (already shifted: no further shift inside, unlike HF's labels argument)."""
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1).long(), ignore_index=-100)


def make_batch(gen, vocab):
    seq = torch.randint(0, vocab, (B, T + 1), generator=gen, dtype=torch.int32)
    input_ids, targets = seq[:, :T].contiguous(), seq[:, 1:].clone()
    for b, t in ((0, 0), (0, 7), (1, 3), (1, 15)):  # a few ignored positions, both rows
        targets[b, t] = -100
    return input_ids, targets


def adamw_losses(forward, params32, decay, input_ids, targets, dtype):
    """Losses of ADAMW["steps"] full-batch torch.optim.AdamW steps; loss i is measured before
    update i (so losses[0] is the initial loss). Two groups: weight decay on `decay` only."""
    params = {n: t.to(dtype).clone().requires_grad_(True) for n, t in params32.items()}
    groups = [
        {"params": [params[n] for n in params if n in decay], "weight_decay": ADAMW["weight_decay"]},
        {"params": [params[n] for n in params if n not in decay], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=ADAMW["lr"], betas=(ADAMW["beta1"], ADAMW["beta2"]), eps=ADAMW["eps"],
                            foreach=False)
    losses = []
    for _ in range(ADAMW["steps"]):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(forward(params, input_ids.long()), targets)
        losses.append(loss.item())
        loss.backward()
        opt.step()
    return torch.tensor(losses, dtype=torch.float64)


def make_model_fixture(name, cfg, make_params, forward, seed):
    gen = torch.Generator().manual_seed(seed)
    init = make_params(cfg, gen)
    input_ids, targets = make_batch(gen, cfg["vocab_size"])
    fwd = lambda p, ids: forward(cfg, p, ids)

    params = {n: t.to(REF).requires_grad_(True) for n, t in init.params.items()}
    logits = fwd(params, input_ids.long())
    loss = loss_fn(logits, targets)
    loss.backward()
    golden = {"input_ids": input_ids, "targets": targets, "logits": f32(logits), "loss": f32(loss.reshape(1))}
    for n, t in params.items():
        golden[f"grad.{n}"] = f32(t.grad)
    losses64 = adamw_losses(fwd, init.params, init.decay, input_ids, targets, REF)
    losses32 = adamw_losses(fwd, init.params, init.decay, input_ids, targets, torch.float32)
    assert abs(losses64[0].item() - loss.item()) < 1e-12
    golden["adamw_losses"] = f32(losses64)

    meta = dict(FORMAT, kind="model", model=name, reference_dtype="float64", seed=seed, init_std=INIT_STD,
                loss_reduction="mean over targets != ignore_index; targets aligned with logits (no shift)",
                ignore_index=-100,
                adamw_lr=ADAMW["lr"], adamw_beta1=ADAMW["beta1"], adamw_beta2=ADAMW["beta2"], adamw_eps=ADAMW["eps"],
                adamw_weight_decay=ADAMW["weight_decay"], adamw_steps=ADAMW["steps"],
                adamw_schedule="constant lr, no gradient clipping, full batch, torch.optim.AdamW",
                adamw_decay_params=",".join(init.decay),
                adamw_f32_vs_f64_max_abs_loss_diff=f"{(losses32 - losses64).abs().max().item():.3e}")
    out = os.path.join(GOLDEN, name)
    write_json(os.path.join(out, "config.json"), cfg)
    # {"format": "pt"} is the metadata transformers expects on a checkpoint it loads.
    write_safetensors(os.path.join(out, "model.safetensors"), init.params, {"format": "pt"})
    write_safetensors(os.path.join(out, "golden.safetensors"), golden, meta)
    print(f"  {name}: loss {loss.item():.6f}, adamw losses {[round(x, 5) for x in losses64.tolist()]}")
    print(f"  {name}: f32 vs f64 AdamW trajectory max |diff| {meta['adamw_f32_vs_f64_max_abs_loss_diff']}")


def check_against_transformers():
    """Optional: loads each committed model folder with transformers (float64, eager attention)
    and prints how far its logits, gradients and AdamW losses are from golden.safetensors."""
    from transformers import AutoModelForCausalLM

    for name in ("gpt2_tiny", "llama_tiny"):
        folder = os.path.join(GOLDEN, name)
        golden, meta = read_safetensors(os.path.join(folder, "golden.safetensors"))
        ids, targets = golden["input_ids"].long(), golden["targets"]
        load = lambda: AutoModelForCausalLM.from_pretrained(folder, torch_dtype=REF, attn_implementation="eager")
        model = load()
        logits = model(input_ids=ids).logits
        loss_fn(logits, targets).backward()
        rel = lambda a, ref: ((a.float() - ref).abs().max() / ref.abs().max()).item()
        grads = {n: p.grad for n, p in model.named_parameters()}
        assert set(grads) == {k[len("grad."):] for k in golden if k.startswith("grad.")}, name
        worst_grad = max(rel(g, golden["grad." + n]) for n, g in grads.items())

        model = load()
        params = dict(model.named_parameters())
        decay = meta["adamw_decay_params"].split(",")
        groups = [{"params": [p for n, p in params.items() if n in decay], "weight_decay": ADAMW["weight_decay"]},
                  {"params": [p for n, p in params.items() if n not in decay], "weight_decay": 0.0}]
        opt = torch.optim.AdamW(groups, lr=ADAMW["lr"], betas=(ADAMW["beta1"], ADAMW["beta2"]), eps=ADAMW["eps"])
        losses = []
        for _ in range(ADAMW["steps"]):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(input_ids=ids).logits, targets)
            losses.append(loss.item())
            loss.backward()
            opt.step()
        adamw_diff = (torch.tensor(losses) - golden["adamw_losses"].double()).abs().max().item()
        print(f"transformers vs {name}: logits rel {rel(logits, golden['logits']):.1e}, "
              f"worst grad rel {worst_grad:.1e}, AdamW losses max |diff| {adamw_diff:.1e}")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    if "--check-transformers" in sys.argv[1:]:
        check_against_transformers()
        return
    make_ops_fixture()
    make_model_fixture("gpt2_tiny", gpt2_config(), gpt2_params, gpt2_forward, seed=2024)
    make_model_fixture("llama_tiny", llama_config(), llama_params, llama_forward, seed=2025)


if __name__ == "__main__":
    main()
