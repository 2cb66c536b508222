#!/usr/bin/env python3
"""GPU training throughput, side by side: `sllm bench train --device cuda` against the same model in PyTorch.

The model is the `gpt2-124m` preset (src/nn/config.cpp): GPT-2 family, vocab 50257 (not
padded to 50304: both sides run the same shapes), context 1024, 12 layers, 12 heads, 768
channels, MLP 3072, LayerNorm (eps 1e-5), GELU (tanh), tied embeddings, no dropout.
`--config small` / `--config tiny` pick the other GPT-2 presets. One step is what sllm's
trainer does (src/train/trainer.cpp): forward, cross-entropy, backward, clip_grad_norm_(1.0),
AdamW (lr 1e-3, betas 0.9/0.95, eps 1e-8, weight decay 0.1 on matrices that are not
embeddings: optim::default_decay), zero_grad. Both sides run 2 untimed warm-up steps, then
N timed steps, each ended by a device synchronize; each run reports the median step.

Precision (`--precision`, default bf16) is the same recipe on both sides: fp32 master
weights and AdamW state; PyTorch runs forward and loss under
torch.autocast(device_type="cuda", dtype=torch.bfloat16) (matmuls and attention in bf16,
norms, softmax and the loss in fp32), sllm with `--precision bf16`. With `--precision fp32`
PyTorch runs without autocast and with TF32 off, as sllm's fp32 path does.

PyTorch gets its good settings: F.scaled_dot_product_attention(is_causal=True) (flash
attention in bf16), AdamW(fused=True) when this torch has it (else foreach), and with
`--compile` a third column with torch.compile(model).

The sides run alternately (ours, PyTorch, [PyTorch compiled], ours, ...) in fresh
processes, so drift of the machine (clocks, other jobs) hits both alike; the table shows the
median of each side's per-run medians, MFU and the ratio ours / PyTorch. MFU uses sllm's
formula exactly (src/cli/cmd_bench_train.cpp): 6 * params * tokens/s / 989e12 (the dense
bf16 peak of an H100/H200 SXM), params counted as nn::ModelConfig::num_parameters() does
(tied embeddings once, position embeddings and biases included; attention FLOPs not counted).

Usage (dev-time only; sllm never needs PyTorch):
  python3 tools/bench_vs_pytorch_gpu.py [--sllm build-cuda/sllm] [--rounds 3] [--steps 20]
      [--batch 8] [--seq 1024] [--precision bf16] [--compile] [--json-out FILE]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# The GPT-2 presets of src/nn/config.cpp (ModelConfig field order there: vocab, n_ctx,
# n_embd, n_layer, n_head, n_kv_head, n_inner).
PRESETS = {
    "tiny": dict(vocab=512, n_ctx=64, n_embd=32, n_layer=2, n_head=4, n_inner=128),
    "small": dict(vocab=8192, n_ctx=256, n_embd=384, n_layer=6, n_head=6, n_inner=1536),
    "gpt2-124m": dict(vocab=50257, n_ctx=1024, n_embd=768, n_layer=12, n_head=12, n_inner=3072),
}
PEAK_BF16_DENSE_FLOPS = 989e12  # H100/H200 SXM, the constant of src/cli/cmd_bench_train.cpp
WARMUP_STEPS = 2
EXIT_ENV = 2  # no torch, no CUDA, no sllm: the machine cannot run this benchmark


def num_parameters(c):
    """nn::ModelConfig::num_parameters() for the GPT-2 family, term by term."""
    C, F = c["n_embd"], c["n_inner"]
    per_layer = 2 * 2 * C + (C * 3 * C + 3 * C) + (C * C + C) + (C * F + F) + (F * C + C)
    return c["vocab"] * C + c["n_ctx"] * C + 2 * C + c["n_layer"] * per_layer  # wte (tied), wpe, ln_f


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
    print(json.dumps({
        "torch": torch.__version__, "cuda": cuda, "torch_cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "sdpa": hasattr(F, "scaled_dot_product_attention"), "compile": hasattr(torch, "compile"),
    }))


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
    sdpa = getattr(F, "scaled_dot_product_attention", None)

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

        def attend(self, q, k, v):  # (B, NH, T, HD) each
            if sdpa is not None:
                return sdpa(q, k, v, is_causal=True)
            # torch < 2.0 (only reached in CPU dry runs): the plain masked softmax.
            T = q.shape[2]
            att = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
            mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
            return F.softmax(att.masked_fill(~mask, float("-inf")), dim=-1) @ v

        def forward(self, x):
            B, T, C = x.shape
            NH = c["n_head"]
            q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
            q = q.view(B, T, NH, C // NH).transpose(1, 2)  # (B, NH, T, HD)
            k = k.view(B, T, NH, C // NH).transpose(1, 2)
            v = v.view(B, T, NH, C // NH).transpose(1, 2)
            y = self.attend(q, k, v).transpose(1, 2).contiguous().view(B, T, C)
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

    model = GPT().to(dev)
    # model.parameters() yields each tensor once, so this counts like num_parameters():
    # a mismatch means the two models differ, and the comparison would be meaningless.
    params = sum(p.numel() for p in model.parameters())
    assert params == num_parameters(c), f"PyTorch model has {params} parameters, sllm's formula {num_parameters(c)}"
    named = list(model.named_parameters())
    decays = lambda n, p: p.dim() >= 2 and "wte" not in n and "wpe" not in n  # optim::default_decay
    groups = [{"params": [p for n, p in named if decays(n, p)], "weight_decay": 0.1},
              {"params": [p for n, p in named if not decays(n, p)], "weight_decay": 0.0}]
    adamw = dict(lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    try:
        opt, opt_kind = torch.optim.AdamW(groups, fused=True, **adamw), "fused"
    except (TypeError, RuntimeError, ValueError):  # torch without fused AdamW, or not on this device
        opt, opt_kind = torch.optim.AdamW(groups, **adamw), "default"
    step_model = torch.compile(model) if args.torch_compile else model

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    total = WARMUP_STEPS + args.steps
    g = torch.Generator(device=dev).manual_seed(1234)
    batches = [(torch.randint(0, c["vocab"], (args.batch, args.seq), generator=g, device=dev),
                torch.randint(0, c["vocab"], (args.batch, args.seq), generator=g, device=dev)) for _ in range(total)]
    sync()
    ms, losses = [], []
    for s in range(total):
        x, y = batches[s]
        t0 = time.perf_counter()
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=bf16):
            logits = step_model(x)
            loss = F.cross_entropy(logits.view(-1, c["vocab"]), y.view(-1))  # autocast: fp32 inside
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
        "side": "pytorch-compile" if args.torch_compile else "pytorch", "config": args.config,
        "batch": args.batch, "seq": args.seq, "steps": args.steps, "precision": args.precision,
        "device": dev.type, "params": params, "ms_per_step": median, "min_ms": min(ms), "max_ms": max(ms),
        "tokens_per_s": tokens_per_s, "first_loss": losses[0], "last_loss": losses[-1],
        "optimizer": opt_kind, "attention": "sdpa" if sdpa is not None else "manual",
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else None,
        "torch": torch.__version__,
    }))


# ---- the parent: alternate fresh processes, then the table ---------------------------------

def run_json(cmd, what, timeout):
    """Runs one side in a fresh process and returns its last stdout line as JSON."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        fail(f"{what} ran longer than {timeout} s: {' '.join(cmd)}", "lower --steps, or raise --timeout")
    except OSError as e:
        fail(f"could not start {what}: {e}")
    if p.returncode != 0:
        tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-15:])
        fail(f"{what} exited with status {p.returncode}: {' '.join(cmd)}\n{tail}")
    lines = p.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        fail(f"{what} printed no JSON line: {' '.join(cmd)}\n{p.stdout[-2000:]}")


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
    cmd = [args.sllm, "bench", "train", "--config", args.config, "--device", args.device, "--batch", str(args.batch),
           "--seq", str(args.seq), "--steps", str(args.steps), "--json"]
    return cmd + (["--precision", args.precision] if with_precision else [])


def torch_cmd(args, compiled):
    cmd = [args.python, os.path.abspath(__file__), "--torch-worker", "--config", args.config, "--device", args.device,
           "--batch", str(args.batch), "--seq", str(args.seq), "--steps", str(args.steps),
           "--precision", args.precision]
    return cmd + (["--torch-compile"] if compiled else [])


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
    with_precision = sllm_has_precision_flag(args.sllm)
    if not with_precision and args.precision != "fp32":
        fail(f"{args.sllm} has no --precision flag on `bench train`, so it cannot run bf16",
             "rebuild sllm from a tree with mixed precision, or pass --precision fp32", EXIT_ENV)
    return probe, with_precision


def side_summary(runs, params, with_mfu):
    tps = statistics.median(r["tokens_per_s"] for r in runs)
    return {"tokens_per_s": tps, "ms_per_step": statistics.median(r["ms_per_step"] for r in runs),
            "mfu": mfu(params, tps) if with_mfu else None, "runs_tokens_per_s": [r["tokens_per_s"] for r in runs], "runs": runs}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sllm", default="build-cuda/sllm", help="path to the sllm binary (default build-cuda/sllm)")
    ap.add_argument("--config", default="gpt2-124m", choices=sorted(PRESETS), help="GPT-2 preset (default gpt2-124m)")
    ap.add_argument("--rounds", type=int, default=3, help="runs per side, alternated (default 3)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per run (default 20)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=None, help="tokens per sequence (default: the model's context)")
    ap.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--compile", action="store_true", help="also time torch.compile(model) in its own processes")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                    help="cuda (the point of this script); cpu only to dry-run the script itself (no MFU)")
    ap.add_argument("--python", default=sys.executable, help="Python with PyTorch for the PyTorch side")
    ap.add_argument("--timeout", type=int, default=600, help="seconds allowed to one run (default 600)")
    ap.add_argument("--json-out", metavar="FILE", help="write the results as JSON here")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--torch-compile", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--torch-probe", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    c = PRESETS[args.config]
    if args.seq is None:
        args.seq = c["n_ctx"]
    if args.torch_probe:
        return torch_probe()
    if args.torch_worker:
        return torch_worker(args)
    if args.rounds < 1 or args.steps < 1 or args.batch < 1 or not 1 <= args.seq <= c["n_ctx"]:
        fail(f"need --rounds, --steps, --batch >= 1 and 1 <= --seq <= {c['n_ctx']} (the context of {args.config})",
             "e.g. --rounds 3 --steps 20 --batch 8 --seq 1024")

    if args.device == "cpu" and args.precision != "fp32":
        fail("--device cpu runs fp32 only (sllm's bf16 mixed precision is a GPU path)", "add --precision fp32")
    probe, with_precision = check_environment(args)
    params = num_parameters(c)
    print(f"{args.config} ({params} params), batch {args.batch} x seq {args.seq}, {args.precision}, "
          f"{args.steps} timed steps, {args.rounds} rounds, on {probe['gpu'] or args.device}; torch {probe['torch']}",
          flush=True)
    sides = [("sllm", None)] + [("pytorch", False)] + ([("pytorch-compile", True)] if args.compile else [])
    runs = {name: [] for name, _ in sides}
    for r in range(args.rounds):
        for name, compiled in sides:
            if compiled is None:
                out = run_json(sllm_cmd(args, with_precision), "sllm bench train", args.timeout)
                if out.get("params") != params:
                    fail(f"sllm reports {out.get('params')} parameters for {args.config}, this script counts {params}",
                         "update PRESETS / num_parameters() here to match src/nn/config.cpp")
                if out.get("precision", "fp32") != args.precision:
                    fail(f"sllm ran precision {out.get('precision', 'fp32 (no precision key)')}, asked {args.precision}")
            else:
                out = run_json(torch_cmd(args, compiled), f"the {name} worker", args.timeout)
            if not isinstance(out.get("tokens_per_s"), (int, float)) or not isinstance(out.get("ms_per_step"), (int, float)):
                fail(f"{name} printed JSON without tokens_per_s / ms_per_step: {json.dumps(out)[:300]}")
            runs[name].append(out)
            loss = f"  loss {out['first_loss']:.3f} -> {out['last_loss']:.3f}" if "last_loss" in out else ""
            print(f"  round {r + 1}/{args.rounds} {name:<16} {out['tokens_per_s']:>12.0f} tok/s  "
                  f"{out['ms_per_step']:>9.2f} ms/step{loss}", flush=True)

    result = {"config": args.config, "params": params, "batch": args.batch, "seq": args.seq, "steps": args.steps,
              "rounds": args.rounds, "precision": args.precision, "device": args.device, "gpu": probe["gpu"],
              "torch": probe["torch"], "peak_flops": PEAK_BF16_DENSE_FLOPS}
    show_mfu = args.device == "cuda"  # MFU against a GPU's peak means nothing for a CPU dry run
    for name, _ in sides:
        result[name.replace("-", "_")] = side_summary(runs[name], params, show_mfu)
    ours = result["sllm"]["tokens_per_s"]
    result["ratio"] = ours / result["pytorch"]["tokens_per_s"]
    if args.compile:
        result["ratio_compile"] = ours / result["pytorch_compile"]["tokens_per_s"]

    print(f"\n{'side':<16} {'tok/s':>12} {'ms/step':>9} {'MFU':>7} {'ours/it':>8}   runs (tok/s)")
    for name, _ in sides:
        s = result[name.replace("-", "_")]
        m = f"{100 * s['mfu']:6.2f}%" if show_mfu else f"{'-':>7}"
        runs_txt = " ".join(f"{x:.0f}" for x in s["runs_tokens_per_s"])
        print(f"{name:<16} {s['tokens_per_s']:>12.0f} {s['ms_per_step']:>9.2f} {m} {ours / s['tokens_per_s']:>8.2f}   "
              f"{runs_txt}")
    print(f"MFU = 6 * {params} * tok/s / {PEAK_BF16_DENSE_FLOPS:.3g} (the same formula as sllm bench train)"
          if show_mfu else "(--device cpu: a dry run of this script; MFU against a GPU peak is not shown)")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
        print(f"wrote {args.json_out}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        fail("interrupted", code=130)
