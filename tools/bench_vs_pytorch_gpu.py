#!/usr/bin/env python3
"""GPU training throughput, side by side: `sllm bench train --device cuda` against the same model in PyTorch.

`--config gpt2-124m` (the default; a preset of src/nn/config.cpp): GPT-2 family, vocab 50257
(not padded to 50304: both sides run the same shapes), context 1024, 12 layers, 12 heads, 768
channels, MLP 3072, LayerNorm (eps 1e-5), GELU (tanh), tied embeddings, no dropout.
`--config smollm2-135m`: the SmolLM2-135M shape, Llama family: vocab 49152, context 2048, 30
layers, 9 query heads and 3 key/value heads of 64 (grouped-query attention), 576 channels,
SwiGLU MLP 1536, RMSNorm (eps 1e-5), RoPE (theta 1e5, the half-split rotation of HF's
LlamaRotaryEmbedding / rotate_half), tied embeddings, no biases. `--config small` / `tiny` /
`small-llama` pick the small presets (CPU dry runs). Both PyTorch models are written in this
file (nn.Linear, nn.Embedding, F.scaled_dot_product_attention; RMSNorm by F.rms_norm where torch
has it); the Llama one gives bit-identical logits to HF's LlamaForCausalLM with the same
weights (checked in fp32 on the CPU). One step is what sllm's trainer does
(src/train/trainer.cpp): forward, cross-entropy, backward, clip_grad_norm_(1.0), AdamW (lr
1e-3, betas 0.9/0.95, eps 1e-8, weight decay 0.1 on matrices that are not embeddings:
optim::default_decay), zero_grad. Both sides run 2 untimed warm-up steps, then
N timed steps, each ended by a device synchronize; each run reports the median step.

Precision (`--precision`, default bf16) is the same recipe on both sides: fp32 master
weights and AdamW state; PyTorch runs forward and loss under
torch.autocast(device_type="cuda", dtype=torch.bfloat16) (matmuls and attention in bf16,
norms, softmax and the loss in fp32), sllm with `--precision bf16`. With `--precision fp32`
PyTorch runs without autocast and with TF32 off, as sllm's fp32 path does.

PyTorch gets its good settings: F.scaled_dot_product_attention(is_causal=True) (flash
attention in bf16; grouped-query attention through enable_gqa=True where torch >= 2.5 has
it, else K/V repeated per query head as HF's repeat_kv does), AdamW(fused=True) when this
torch has it (else the default), and with `--compile` a column with torch.compile(model)
(in the first `--compile-rounds` rounds only: each compiled process pays the compilation).

`--hf` (Llama configs; default on when `transformers` imports) adds a column with Hugging
Face transformers' own LlamaForCausalLM of the same shape (attn_implementation="sdpa", eager,
random init), the same step on the same optimizer settings, with the loss from
`model(input_ids=x, labels=y).loss` as an HF fine-tuning loop computes it (HF shifts the labels,
so it scores T-1 positions a row). This is the "HF transformers eager" side of issue 15's
Llama bar (sllm >= 1.5x HF eager), measured the way the anchor
shared/measurements/h200-2026-12-04/peft_anchor.py measured full fine-tuning.

The sides run alternately (ours, PyTorch, [HF], [PyTorch compiled], ours, ...) in fresh
processes, so drift of the machine (clocks, other jobs) hits both alike; the table shows the
median of each side's per-run medians, MFU and the ratio ours / it. MFU uses sllm's
formula exactly (src/cli/cmd_bench_train.cpp): 6 * params * tokens/s / 989e12 (the dense
bf16 peak of an H100/H200 SXM), params counted as nn::ModelConfig::num_parameters() does
(tied embeddings once, position embeddings and biases included; attention FLOPs not counted),
the same N for every side (each side's model is checked to have exactly N parameters).

The JSON (--json-out, rewritten after every run, so a run cut short keeps what it measured):
config, family, params, batch, seq, steps, rounds, precision, device, gpu, torch, peak_flops,
per side (sllm, pytorch, pytorch_compile, hf) tokens_per_s / ms_per_step / mfu / runs, and
ratio (ours / PyTorch eager), ratio_compile, ratio_hf when those sides ran.

Usage (dev-time only; sllm never needs PyTorch):
  python3 tools/bench_vs_pytorch_gpu.py [--config gpt2-124m|smollm2-135m] [--sllm build-cuda/sllm]
      [--rounds 3] [--steps 20] [--batch 8] [--seq 1024] [--precision bf16] [--compile]
      [--compile-rounds N] [--hf | --no-hf] [--json-out FILE]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# The presets of src/nn/config.cpp (ModelConfig field order there: vocab, n_ctx, n_embd,
# n_layer, n_head, n_kv_head, n_inner; then norm_eps, rope_theta, tie_embeddings).
PRESETS = {
    "tiny": dict(family="gpt2", vocab=512, n_ctx=64, n_embd=32, n_layer=2, n_head=4, n_inner=128),
    "small": dict(family="gpt2", vocab=8192, n_ctx=256, n_embd=384, n_layer=6, n_head=6, n_inner=1536),
    "gpt2-124m": dict(family="gpt2", vocab=50257, n_ctx=1024, n_embd=768, n_layer=12, n_head=12, n_inner=3072),
    "small-llama": dict(family="llama", vocab=8192, n_ctx=256, n_embd=384, n_layer=6, n_head=6, n_kv_head=2,
                        n_inner=1024, norm_eps=1e-5, rope_theta=10000.0, tie=False),
    "smollm2-135m": dict(family="llama", vocab=49152, n_ctx=2048, n_embd=576, n_layer=30, n_head=9, n_kv_head=3,
                         n_inner=1536, norm_eps=1e-5, rope_theta=100000.0, tie=True),
}
PEAK_BF16_DENSE_FLOPS = 989e12  # H100/H200 SXM, the constant of src/cli/cmd_bench_train.cpp
WARMUP_STEPS = 2
EXIT_ENV = 2  # no torch, no CUDA, no sllm: the machine cannot run this benchmark


def num_parameters(c):
    """nn::ModelConfig::num_parameters(), term by term (GPT-2: 124,439,808 for gpt2-124m;
    Llama: 134,515,008 for smollm2-135m, what HF counts for SmolLM2-135M)."""
    C, F = c["n_embd"], c["n_inner"]
    if c["family"] == "gpt2":
        per_layer = 2 * 2 * C + (C * 3 * C + 3 * C) + (C * C + C) + (C * F + F) + (F * C + C)
        return c["vocab"] * C + c["n_ctx"] * C + 2 * C + c["n_layer"] * per_layer  # wte (tied), wpe, ln_f
    kv = c["n_kv_head"] * (C // c["n_head"])
    per_layer = 2 * C + C * C + 2 * C * kv + C * C + 3 * C * F  # 2 RMSNorms, q, k, v, o, gate/up/down
    return c["vocab"] * C * (1 if c["tie"] else 2) + C + c["n_layer"] * per_layer  # embed (+ head), final norm


def mfu(params, tokens_per_s):
    return 6.0 * params * tokens_per_s / PEAK_BF16_DENSE_FLOPS


def fail(msg, hint=None, code=1):
    """One clear line (plus a hint) on stderr and a non-zero exit; never a traceback."""
    print(f"error: {msg}" + (f"\n---> HINT: {hint}" if hint else ""), file=sys.stderr, flush=True)
    sys.exit(code)


# ---- PyTorch side (runs in a child process) ----------------------------------------------

def torch_probe():
    """Prints what this Python's torch offers, as one JSON line (a child process, so the
    parent never holds a CUDA context while the timed runs use the GPU)."""
    try:
        import torch
        import torch.nn.functional as F
    except Exception as e:  # ImportError, or a broken install (missing libcudart, ...)
        print(json.dumps({"torch": None, "why": f"{type(e).__name__}: {e}"}))
        return
    cuda = torch.cuda.is_available()
    try:
        import transformers
        from transformers import LlamaConfig, LlamaForCausalLM  # noqa: F401 (the classes --hf uses)
        hf, hf_why = transformers.__version__, None
    except Exception as e:
        hf, hf_why = None, f"{type(e).__name__}: {e}"
    print(json.dumps({
        "torch": torch.__version__, "cuda": cuda, "torch_cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "sdpa": hasattr(F, "scaled_dot_product_attention"), "compile": hasattr(torch, "compile"),
        "transformers": hf, "transformers_why": hf_why,
    }))


def build_gpt2(c, torch, nn, F, sdpa):
    """GPT-2 of src/nn/transformer.cpp: pre-LN blocks, fused QKV, GELU (tanh), tied head."""

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            C = c["n_embd"]
            self.ln_1 = nn.LayerNorm(C, eps=1e-5)
            self.c_attn = nn.Linear(C, 3 * C)
            self.c_proj = nn.Linear(C, C)
            self.ln_2 = nn.LayerNorm(C, eps=1e-5)
            self.c_fc = nn.Linear(C, c["n_inner"])
            self.mlp_proj = nn.Linear(c["n_inner"], C)

        def forward(self, x):
            B, T, C = x.shape
            NH = c["n_head"]
            q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
            q = q.view(B, T, NH, C // NH).transpose(1, 2)  # (B, NH, T, HD)
            k = k.view(B, T, NH, C // NH).transpose(1, 2)
            v = v.view(B, T, NH, C // NH).transpose(1, 2)
            y = sdpa(q, k, v).transpose(1, 2).contiguous().view(B, T, C)
            x = x + self.c_proj(y)
            return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(c["vocab"], c["n_embd"])
            self.wpe = nn.Embedding(c["n_ctx"], c["n_embd"])
            self.h = nn.ModuleList([Block() for _ in range(c["n_layer"])])
            self.ln_f = nn.LayerNorm(c["n_embd"], eps=1e-5)
            self.apply(self._init)

        @staticmethod
        def _init(m):
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

        def forward(self, ids):
            T = ids.shape[1]
            x = self.wte(ids) + self.wpe(torch.arange(T, device=ids.device))
            for block in self.h:
                x = block(x)
            return F.linear(self.ln_f(x), self.wte.weight)  # tied LM head, (B, T, V)

    return GPT()


def build_llama(c, torch, nn, F, sdpa):
    """Llama of src/nn/transformer.cpp and HF's LlamaForCausalLM: RMSNorm, RoPE (half split),
    grouped-query attention, SwiGLU, no biases; head tied to the embedding when c["tie"]."""
    C, NH, NKV = c["n_embd"], c["n_head"], c["n_kv_head"]
    HD = C // NH
    rms_norm = getattr(F, "rms_norm", None)  # torch >= 2.4

    class RMSNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(C))

        def forward(self, x):  # x: the fp32 residual stream (autocast leaves it fp32)
            if rms_norm is not None:
                return rms_norm(x, (C,), self.weight, c["norm_eps"])
            xf = x.float()  # HF's LlamaRMSNorm
            return self.weight * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + c["norm_eps"])).to(x.dtype)

    def rotate_half(x):  # HF's rotate_half: (x1, x2) -> (-x2, x1) over the two halves of the head
        return torch.cat((-x[..., HD // 2:], x[..., :HD // 2]), dim=-1)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.input_layernorm = RMSNorm()
            self.q_proj = nn.Linear(C, NH * HD, bias=False)
            self.k_proj = nn.Linear(C, NKV * HD, bias=False)
            self.v_proj = nn.Linear(C, NKV * HD, bias=False)
            self.o_proj = nn.Linear(NH * HD, C, bias=False)
            self.post_attention_layernorm = RMSNorm()
            self.gate_proj = nn.Linear(C, c["n_inner"], bias=False)
            self.up_proj = nn.Linear(C, c["n_inner"], bias=False)
            self.down_proj = nn.Linear(c["n_inner"], C, bias=False)

        def forward(self, x, cos, sin):
            B, T, _ = x.shape
            h = self.input_layernorm(x)
            q = self.q_proj(h).view(B, T, NH, HD).transpose(1, 2)  # (B, NH, T, HD)
            k = self.k_proj(h).view(B, T, NKV, HD).transpose(1, 2)  # (B, NKV, T, HD)
            v = self.v_proj(h).view(B, T, NKV, HD).transpose(1, 2)
            cos, sin = cos.to(q.dtype), sin.to(q.dtype)  # as HF: the rotation in the activations' dtype
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            y = sdpa(q, k, v).transpose(1, 2).reshape(B, T, NH * HD)
            x = x + self.o_proj(y)
            h = self.post_attention_layernorm(x)
            return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))

    class Llama(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding(c["vocab"], C)
            self.layers = nn.ModuleList([Block() for _ in range(c["n_layer"])])
            self.norm = RMSNorm()
            self.lm_head = None if c["tie"] else nn.Linear(C, c["vocab"], bias=False)
            inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, HD, 2, dtype=torch.float32) / HD))
            freqs = torch.outer(torch.arange(c["n_ctx"], dtype=torch.float32), inv_freq)
            emb = torch.cat((freqs, freqs), dim=-1)  # (n_ctx, HD): HF's cos/sin layout
            self.register_buffer("cos", emb.cos(), persistent=False)
            self.register_buffer("sin", emb.sin(), persistent=False)
            for m in self.modules():
                if isinstance(m, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(m.weight, 0.0, 0.02)

        def forward(self, ids):
            T = ids.shape[1]
            x = self.embed_tokens(ids)
            cos, sin = self.cos[:T], self.sin[:T]
            for block in self.layers:
                x = block(x, cos, sin)
            x = self.norm(x)
            return F.linear(x, self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight)

    return Llama()


def build_hf_llama(c, torch):
    """transformers' LlamaForCausalLM of the same shape (random init, SDPA attention)."""
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=c["vocab"], hidden_size=c["n_embd"], intermediate_size=c["n_inner"],
                      num_hidden_layers=c["n_layer"], num_attention_heads=c["n_head"],
                      num_key_value_heads=c["n_kv_head"], max_position_embeddings=c["n_ctx"],
                      rope_theta=c["rope_theta"], rms_norm_eps=c["norm_eps"], tie_word_embeddings=c["tie"],
                      hidden_act="silu", attention_bias=False, mlp_bias=False, use_cache=False,
                      attn_implementation="sdpa")
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg)


def make_sdpa(torch, F, n_head, n_kv_head):
    """Causal attention over (B, heads, T, HD) tensors: SDPA (flash attention in bf16 on a
    GPU), grouped-query natively where torch has enable_gqa; returns (function, name)."""
    sdpa = getattr(F, "scaled_dot_product_attention", None)
    rep = n_head // n_kv_head
    if sdpa is None:  # torch < 2.0 (only reached in CPU dry runs): the plain masked softmax
        def manual(q, k, v):
            if rep > 1:
                k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
            T = q.shape[2]
            att = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
            mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
            return F.softmax(att.masked_fill(~mask, float("-inf")), dim=-1) @ v
        return manual, "manual"
    if rep == 1:
        return (lambda q, k, v: sdpa(q, k, v, is_causal=True)), "sdpa"
    try:  # torch >= 2.5
        z = torch.zeros(1, 2, 1, 2)
        sdpa(z, z[:, :1], z[:, :1], is_causal=True, enable_gqa=True)
        return (lambda q, k, v: sdpa(q, k, v, is_causal=True, enable_gqa=True)), "sdpa-gqa"
    except (TypeError, RuntimeError):
        # HF's repeat_kv: each key/value head serves `rep` consecutive query heads.
        return (lambda q, k, v: sdpa(q, k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1),
                                     is_causal=True)), "sdpa-repeat-kv"


def torch_worker(args):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    c = PRESETS[args.config]
    dev = torch.device(args.device)
    bf16 = args.precision == "bf16"
    # fp32 means fp32: no TF32 tensor cores (sllm's fp32 path keeps TF32 off too).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    hf = args.torch_side == "hf"
    extra = {}
    if hf:
        import transformers
        model = build_hf_llama(c, torch).to(dev)
        extra = {"transformers": transformers.__version__, "model": "transformers.LlamaForCausalLM"}
        attention = "sdpa (transformers)"
    else:
        sdpa, attention = make_sdpa(torch, F, c["n_head"], c.get("n_kv_head", c["n_head"]))
        model = (build_gpt2 if c["family"] == "gpt2" else build_llama)(c, torch, nn, F, sdpa).to(dev)
    # model.parameters() yields each tensor once, so this counts like num_parameters():
    # a mismatch means the two models differ, and the comparison would be meaningless.
    params = sum(p.numel() for p in model.parameters())
    assert params == num_parameters(c), f"PyTorch model has {params} parameters, sllm's formula {num_parameters(c)}"
    named = list(model.named_parameters())
    # optim::default_decay: matrices decay, except the embeddings (wte, wpe, embed_tokens).
    decays = lambda n, p: p.dim() >= 2 and not any(e in n for e in ("wte", "wpe", "embed_tokens"))
    groups = [{"params": [p for n, p in named if decays(n, p)], "weight_decay": 0.1},
              {"params": [p for n, p in named if not decays(n, p)], "weight_decay": 0.0}]
    adamw = dict(lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    try:
        opt, opt_kind = torch.optim.AdamW(groups, fused=True, **adamw), "fused"
    except (TypeError, RuntimeError, ValueError):  # torch without fused AdamW, or not on this device
        opt, opt_kind = torch.optim.AdamW(groups, **adamw), "default"
    compiled = args.torch_side == "compile"
    step_model = torch.compile(model) if compiled else model

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def loss_of(x, y):
        if hf:  # an HF fine-tuning loop's loss (shifted labels, logits upcast to fp32 inside)
            return step_model(input_ids=x, labels=y).loss
        logits = step_model(x)
        return F.cross_entropy(logits.view(-1, c["vocab"]), y.view(-1))  # autocast: fp32 inside

    total = WARMUP_STEPS + args.steps
    g = torch.Generator(device=dev).manual_seed(1234)
    batches = [(torch.randint(0, c["vocab"], (args.batch, args.seq), generator=g, device=dev),
                torch.randint(0, c["vocab"], (args.batch, args.seq), generator=g, device=dev)) for _ in range(total)]
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync()
    ms, losses = [], []
    for s in range(total):
        x, y = batches[s]
        t0 = time.perf_counter()
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_of(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        elapsed = (time.perf_counter() - t0) * 1000.0
        losses.append(loss.item())  # after the clock, like sllm's loss.item()
        if s >= WARMUP_STEPS:
            ms.append(elapsed)
    median = statistics.median(ms)
    tokens_per_s = args.batch * args.seq / (median / 1000.0)
    print(json.dumps({
        "side": {"eager": "pytorch", "compile": "pytorch-compile", "hf": "hf"}[args.torch_side], "config": args.config,
        "batch": args.batch, "seq": args.seq, "steps": args.steps, "precision": args.precision,
        "device": dev.type, "params": params, "ms_per_step": median, "min_ms": min(ms), "max_ms": max(ms),
        "tokens_per_s": tokens_per_s, "first_loss": losses[0], "last_loss": losses[-1],
        "optimizer": opt_kind, "attention": attention,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else None,
        "torch": torch.__version__, **extra,
    }))


# ---- the parent: alternate fresh processes, then the table ---------------------------------

class SideFailed(Exception):
    pass


def run_json(cmd, what, timeout, required=True):
    """Runs one side in a fresh process and returns its last stdout line as JSON. A required
    side's failure ends the script; an optional one's (torch.compile, HF) raises SideFailed
    with one line, so the other sides still get measured."""
    def bad(msg, hint=None):
        if required:
            fail(msg, hint)
        raise SideFailed(msg.splitlines()[0] + (" | " + msg.splitlines()[-1] if "\n" in msg else ""))
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return bad(f"{what} ran longer than {timeout} s: {' '.join(cmd)}", "lower --steps, or raise --timeout")
    except OSError as e:
        return bad(f"could not start {what}: {e}")
    if p.returncode != 0:
        tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-15:])
        return bad(f"{what} exited with status {p.returncode}: {' '.join(cmd)}\n{tail}")
    lines = p.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return bad(f"{what} printed no JSON line: {' '.join(cmd)}\n{p.stdout[-2000:]}")


def run_quick(cmd, what):
    """A short helper process (a probe, --help); its output whatever its exit status."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        fail(f"could not run {what}: {e}", None, EXIT_ENV)


def sllm_has_precision_flag(sllm):
    p = run_quick([sllm, "bench", "train", "--help"], f"{sllm} bench train --help")
    return "--precision" in p.stdout + p.stderr


def sllm_cmd(args, with_precision):
    cmd = [args.sllm, "bench", "train", "--config", args.sllm_config or args.config, "--device", args.device,
           "--batch", str(args.batch), "--seq", str(args.seq), "--steps", str(args.steps), "--json"]
    return cmd + (["--precision", args.precision] if with_precision else [])


def torch_cmd(args, side):
    return [args.python, os.path.abspath(__file__), "--torch-worker", side, "--config", args.config, "--device",
            args.device, "--batch", str(args.batch), "--seq", str(args.seq), "--steps", str(args.steps),
            "--precision", args.precision]


def check_environment(args):
    """Fails with one clear message when this machine cannot run the comparison."""
    if not (os.path.isfile(args.sllm) and os.access(args.sllm, os.X_OK)):
        fail(f"{args.sllm} is not an executable",
             "build it (cmake -S . -B build-cuda -DSLLM_CUDA=ON && cmake --build build-cuda --target sllm) "
             "or pass --sllm PATH", EXIT_ENV)
    p = run_quick([args.python, os.path.abspath(__file__), "--torch-probe"], f"{args.python} (PyTorch probe)")
    try:
        probe = json.loads(p.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        fail(f"could not ask {args.python} about PyTorch (exit {p.returncode}): {p.stderr.strip()[-500:]}", None,
             EXIT_ENV)
    if probe["torch"] is None:
        fail(f"PyTorch is not importable by {args.python} ({probe['why']})",
             "install torch with CUDA for this Python, or pass --python PATH to one that has it", EXIT_ENV)
    if args.device == "cuda" and not probe["cuda"]:
        fail(f"PyTorch {probe['torch']} (CUDA build: {probe['torch_cuda']}) sees no CUDA device",
             "run on a machine with an NVIDIA GPU and a CUDA build of torch (nvidia-smi must list the GPU)", EXIT_ENV)
    if args.compile and not probe["compile"]:
        fail(f"PyTorch {probe['torch']} has no torch.compile", "drop --compile, or use torch >= 2.0", EXIT_ENV)
    llama = PRESETS[args.config]["family"] == "llama"
    if args.hf is None:  # the default: on for Llama configs when transformers imports
        args.hf = llama and probe.get("transformers") is not None
        if llama and not args.hf:
            print(f"(no HF transformers column: {probe.get('transformers_why')})", flush=True)
    elif args.hf:
        if not llama:
            fail(f"--hf times transformers' LlamaForCausalLM; {args.config} is a GPT-2 config",
                 "use --config smollm2-135m (or small-llama), or drop --hf")
        if probe.get("transformers") is None:
            fail(f"--hf: transformers is not importable by {args.python} ({probe.get('transformers_why')})",
                 "pip install transformers, or pass --no-hf", EXIT_ENV)
    with_precision = sllm_has_precision_flag(args.sllm)
    if not with_precision and args.precision != "fp32":
        fail(f"{args.sllm} has no --precision flag on `bench train`, so it cannot run bf16",
             "rebuild sllm from a tree with mixed precision, or pass --precision fp32", EXIT_ENV)
    return probe, with_precision


def side_summary(runs, params, with_mfu):
    tps = statistics.median(r["tokens_per_s"] for r in runs)
    return {"tokens_per_s": tps, "ms_per_step": statistics.median(r["ms_per_step"] for r in runs),
            "mfu": mfu(params, tps) if with_mfu else None, "runs_tokens_per_s": [r["tokens_per_s"] for r in runs], "runs": runs}


# The sides in the order of a round, the key each has in the JSON, and what the ratio is called.
SIDE_KEYS = {"sllm": "sllm", "pytorch": "pytorch", "hf": "hf", "pytorch-compile": "pytorch_compile"}
RATIO_KEYS = {"pytorch": "ratio", "pytorch-compile": "ratio_compile", "hf": "ratio_hf"}


def results(args, probe, params, runs, errors, show_mfu):
    """The JSON of what has been measured so far (rewritten after every run)."""
    c = PRESETS[args.config]
    r = {"config": args.config, "family": c["family"], "params": params, "batch": args.batch, "seq": args.seq,
         "steps": args.steps, "rounds": args.rounds, "precision": args.precision, "device": args.device,
         "gpu": probe["gpu"], "torch": probe["torch"], "transformers": probe.get("transformers"),
         "peak_flops": PEAK_BF16_DENSE_FLOPS}
    for name, side_runs in runs.items():
        if side_runs:
            r[SIDE_KEYS[name]] = side_summary(side_runs, params, show_mfu)
    if "sllm" in r:
        for name, key in RATIO_KEYS.items():
            if SIDE_KEYS[name] in r:
                r[key] = r["sllm"]["tokens_per_s"] / r[SIDE_KEYS[name]]["tokens_per_s"]
    if errors:
        r["errors"] = errors
    return r


def write_json(path, result):
    if path:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 epilog="The models, the step and the JSON: see the top of this file.")
    ap.add_argument("--sllm", default="build-cuda/sllm", help="path to the sllm binary (default build-cuda/sllm)")
    ap.add_argument("--config", default="gpt2-124m", choices=sorted(PRESETS),
                    help="model preset of src/nn/config.cpp (default gpt2-124m; the Llama shape: smollm2-135m)")
    ap.add_argument("--sllm-config", default=None, metavar="PRESET_OR_JSON",
                    help="what sllm gets as --config (default: --config; a config.json of the same shape for an "
                         "sllm without that preset)")
    ap.add_argument("--rounds", type=int, default=3, help="runs per side, alternated (default 3)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per run (default 20)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=None, help="tokens per sequence (default: the model's context)")
    ap.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--compile", action="store_true", help="also time torch.compile(model) in its own processes")
    ap.add_argument("--compile-rounds", type=int, default=None, metavar="N",
                    help="torch.compile runs in the first N rounds only (default: every round)")
    ap.add_argument("--hf", action=argparse.BooleanOptionalAction, default=None,
                    help="also time HF transformers' LlamaForCausalLM, eager (Llama configs; default: on when "
                         "transformers imports)")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                    help="cuda (the point of this script); cpu only to dry-run the script itself (no MFU)")
    ap.add_argument("--python", default=sys.executable, help="Python with PyTorch for the PyTorch side")
    ap.add_argument("--timeout", type=int, default=600, help="seconds allowed to one run (default 600)")
    ap.add_argument("--json-out", metavar="FILE", help="write the results as JSON here (after every run)")
    ap.add_argument("--torch-worker", choices=["eager", "compile", "hf"], dest="torch_side", help=argparse.SUPPRESS)
    ap.add_argument("--torch-probe", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    c = PRESETS[args.config]
    if args.seq is None:
        args.seq = c["n_ctx"]
    if args.torch_probe:
        return torch_probe()
    if args.torch_side:
        return torch_worker(args)
    if args.rounds < 1 or args.steps < 1 or args.batch < 1 or not 1 <= args.seq <= c["n_ctx"]:
        fail(f"need --rounds, --steps, --batch >= 1 and 1 <= --seq <= {c['n_ctx']} (the context of {args.config})",
             "e.g. --rounds 3 --steps 20 --batch 8 --seq 1024")
    compile_rounds = args.rounds if args.compile_rounds is None else args.compile_rounds
    if compile_rounds < 0:
        fail("--compile-rounds must be >= 0", "e.g. --compile-rounds 1")

    if args.device == "cpu" and args.precision != "fp32":
        fail("--device cpu runs fp32 only (sllm's bf16 mixed precision is a GPU path)", "add --precision fp32")
    probe, with_precision = check_environment(args)
    params = num_parameters(c)
    print(f"{args.config} ({c['family']}, {params} params), batch {args.batch} x seq {args.seq}, {args.precision}, "
          f"{args.steps} timed steps, {args.rounds} rounds, on {probe['gpu'] or args.device}; torch {probe['torch']}"
          + (f", transformers {probe['transformers']}" if args.hf else ""), flush=True)
    # Cheap sides first in a round, the compiled one (a minute of compilation per process) last.
    sides = ["sllm", "pytorch"] + (["hf"] if args.hf else []) + (["pytorch-compile"] if args.compile else [])
    runs = {name: [] for name in sides}
    errors = []
    show_mfu = args.device == "cuda"  # MFU against a GPU's peak means nothing for a CPU dry run
    for r in range(args.rounds):
        for name in sides:
            if name == "pytorch-compile" and r >= compile_rounds:
                continue
            if any(e.startswith(name + ":") for e in errors):
                continue  # an optional side that failed once is not retried
            if name == "sllm":
                out = run_json(sllm_cmd(args, with_precision), "sllm bench train", args.timeout)
                if out.get("params") != params:
                    fail(f"sllm reports {out.get('params')} parameters for {args.config}, this script counts {params}",
                         "update PRESETS / num_parameters() here to match src/nn/config.cpp")
                if out.get("precision", "fp32") != args.precision:
                    fail(f"sllm ran precision {out.get('precision', 'fp32 (no precision key)')}, asked {args.precision}")
            else:
                worker = {"pytorch": "eager", "pytorch-compile": "compile", "hf": "hf"}[name]
                try:
                    out = run_json(torch_cmd(args, worker), f"the {name} worker", args.timeout,
                                   required=name == "pytorch")
                except SideFailed as e:
                    errors.append(f"{name}: {e}")
                    print(f"  round {r + 1}/{args.rounds} {name:<16} FAILED: {e}", flush=True)
                    write_json(args.json_out, results(args, probe, params, runs, errors, show_mfu))
                    continue
            if not isinstance(out.get("tokens_per_s"), (int, float)) or not isinstance(out.get("ms_per_step"), (int, float)):
                fail(f"{name} printed JSON without tokens_per_s / ms_per_step: {json.dumps(out)[:300]}")
            runs[name].append(out)
            loss = f"  loss {out['first_loss']:.3f} -> {out['last_loss']:.3f}" if "last_loss" in out else ""
            print(f"  round {r + 1}/{args.rounds} {name:<16} {out['tokens_per_s']:>12.0f} tok/s  "
                  f"{out['ms_per_step']:>9.2f} ms/step{loss}", flush=True)
            write_json(args.json_out, results(args, probe, params, runs, errors, show_mfu))

    result = results(args, probe, params, runs, errors, show_mfu)
    ours = result["sllm"]["tokens_per_s"]
    print(f"\n{'side':<16} {'tok/s':>12} {'ms/step':>9} {'MFU':>7} {'ours/it':>8}   runs (tok/s)")
    for name in sides:
        if not runs[name]:
            print(f"{name:<16} {'failed':>12}")
            continue
        s = result[SIDE_KEYS[name]]
        m = f"{100 * s['mfu']:6.2f}%" if show_mfu else f"{'-':>7}"
        runs_txt = " ".join(f"{x:.0f}" for x in s["runs_tokens_per_s"])
        print(f"{name:<16} {s['tokens_per_s']:>12.0f} {s['ms_per_step']:>9.2f} {m} {ours / s['tokens_per_s']:>8.2f}   "
              f"{runs_txt}")
    print(f"MFU = 6 * {params} * tok/s / {PEAK_BF16_DENSE_FLOPS:.3g} (the same formula as sllm bench train)"
          if show_mfu else "(--device cpu: a dry run of this script; MFU against a GPU peak is not shown)")
    if args.json_out:
        write_json(args.json_out, result)
        print(f"wrote {args.json_out}")
    if errors:
        fail("some sides failed (the others are measured above): " + "; ".join(errors))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        fail("interrupted", code=130)
