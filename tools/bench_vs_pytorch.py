#!/usr/bin/env python3
"""Training throughput, side by side: `sllm bench train` against the same model in PyTorch.

The model is the `small` preset (src/nn/config.cpp): GPT-2 family, vocab 8192, context
256, 6 layers, 6 heads, 384 channels, MLP 1536, LayerNorm, GELU (tanh), tied embeddings,
no dropout. One step is what sllm's training loop does (src/train/train_loop.cpp): forward,
cross-entropy, backward, clip_grad_norm_(1.0), AdamW (betas 0.9/0.95, eps 1e-8, weight
decay 0.1 on matrices that are not embeddings), zero_grad. Both sides run 2 warm-up steps
and report the median over the timed steps.

The two run alternately (ours, theirs, ours, theirs, ...) in fresh processes, so slow drift
of a shared machine (other jobs, thermal state) hits both alike; the table shows the median
of each side's per-run medians and the ratio ours / PyTorch.

PyTorch gets its best setting on this machine: OPENBLAS_CORETYPE=SKYLAKEX on AVX-512 CPUs,
HASWELL on AVX2 ones (Debian's DYNAMIC_ARCH OpenBLAS otherwise mis-detects newer CPUs) and OMP_WAIT_POLICY=PASSIVE (spinning
OpenMP workers steal the few cores), plus torch.set_num_threads(threads) and
OPENBLAS_NUM_THREADS=threads.

--method lora trains LoRA adapters instead (both sides: r 16, alpha 32, dropout 0.05 on every
Linear of the blocks, PEFT's "all-linear": c_attn, c_proj, c_fc and the MLP's c_proj; the
base frozen, AdamW over A and B only). The PyTorch side is PEFT (peft.inject_adapter_in_model
on the same module tree). --method full lora runs both and also prints each side's LoRA step
time as a fraction of its full step. Peak memory is each process's peak RSS (sllm's
peak_mem_bytes; resource.getrusage's ru_maxrss for PyTorch).

Usage (dev-time only; sllm never needs PyTorch):
  /usr/bin/python3 tools/bench_vs_pytorch.py [--sllm build/sllm] [--threads 1 2] [--rounds 2] [--method full lora]
"""
import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

SMALL = dict(vocab=8192, n_ctx=256, n_layer=6, n_head=6, n_embd=384, n_inner=1536)


LORA = dict(r=16, alpha=32, dropout=0.05, targets=["c_attn", "c_proj", "c_fc", "mlp_proj"])


def torch_worker(threads, batch, seq, steps, method):
    """Runs in a child process whose environment already holds the OpenBLAS/OpenMP settings."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    c = SMALL

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
            mask = torch.tril(torch.ones(c["n_ctx"], c["n_ctx"], dtype=torch.bool))
            self.register_buffer("mask", mask.view(1, 1, c["n_ctx"], c["n_ctx"]), persistent=False)

        def forward(self, x):
            B, T, C = x.shape
            NH = c["n_head"]
            HD = C // NH
            q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
            q = q.view(B, T, NH, HD).transpose(1, 2)  # (B, NH, T, HD)
            k = k.view(B, T, NH, HD).transpose(1, 2)
            v = v.view(B, T, NH, HD).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(HD))
            att = att.masked_fill(~self.mask[:, :, :T, :T], float("-inf"))
            att = F.softmax(att, dim=-1)
            y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
            x = x + self.c_proj(y)
            x = x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))
            return x

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
            x = self.wte(ids) + self.wpe(torch.arange(T))
            for block in self.h:
                x = block(x)
            return self.ln_f(x) @ self.wte.weight.t()  # tied LM head

    model = GPT()
    if method == "lora":
        import peft
        cfg = peft.LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                              target_modules=LORA["targets"], bias="none")
        model = peft.inject_adapter_in_model(cfg, model)
        for n, p in model.named_parameters():
            p.requires_grad_("lora_" in n)
        model.train()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in params if p.dim() >= 2 and "wte" not in n and "wpe" not in n]
    no_decay = [p for n, p in params if not (p.dim() >= 2 and "wte" not in n and "wpe" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    g = torch.Generator().manual_seed(1234)
    total = steps + 2
    batches = [(torch.randint(0, c["vocab"], (batch, seq), generator=g),
                torch.randint(0, c["vocab"], (batch, seq), generator=g)) for _ in range(total)]
    ms = []
    for s in range(total):
        x, y = batches[s]
        t0 = time.perf_counter()
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, c["vocab"]), y.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        elapsed = (time.perf_counter() - t0) * 1000.0
        if s >= 2:
            ms.append(elapsed)
    median = statistics.median(ms)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    print(json.dumps({"config": "small", "batch": batch, "seq": seq, "threads": threads, "ms_per_step": median,
                      "tokens_per_s": batch * seq / (median / 1000.0), "torch": torch.__version__, "method": method,
                      "trainable_params": sum(p.numel() for _, p in params), "peak_mem_bytes": peak}))


def openblas_coretype():
    """The widest OpenBLAS kernel family this CPU runs (a user's own setting wins)."""
    if "OPENBLAS_CORETYPE" in os.environ:
        return os.environ["OPENBLAS_CORETYPE"]
    with open("/proc/cpuinfo") as f:
        flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    if "avx512f" in flags:
        return "SKYLAKEX"
    return "HASWELL" if "avx2" in flags and "fma" in flags else "PRESCOTT"


def run_json(cmd, env):
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sllm", default="build/sllm", help="path to the sllm binary (default build/sllm)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=2, help="runs per side and thread count, alternated (default 2)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--method", nargs="+", choices=["full", "lora"], default=["full"])
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        torch_worker(args.threads[0], args.batch, args.seq, args.steps, args.method[0])
        return
    if not os.access(args.sllm, os.X_OK):
        sys.exit(f"error: {args.sllm} is not an executable ---> HINT: build it (cmake --build build --target sllm) "
                 "or pass --sllm PATH")

    print(f"uptime: {os.getloadavg()} (load average 1/5/15 min)", flush=True)
    print(f"{'method':>6} {'threads':>7} {'ours tok/s':>11} {'pytorch tok/s':>14} {'ratio':>6} {'ours MiB':>9} "
          f"{'pytorch MiB':>11}   runs (ours | pytorch)", flush=True)
    step_ms = {}  # (method, threads) -> (ours, pytorch) median ms per step
    for method in args.method:
        for threads in args.threads:
            env_ours = dict(os.environ, OMP_NUM_THREADS=str(threads))
            # OPENBLAS_NUM_THREADS: Debian's pthread OpenBLAS ignores torch.set_num_threads and
            # would take every core in the "1 thread" runs.
            env_torch = dict(os.environ, OPENBLAS_CORETYPE=openblas_coretype(), OMP_WAIT_POLICY="PASSIVE",
                             OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
            ours, theirs = [], []
            for _ in range(args.rounds):
                ours.append(run_json([args.sllm, "bench", "train", "--config", "small", "--json", "--threads",
                                      str(threads), "--steps", str(args.steps), "--batch", str(args.batch), "--seq",
                                      str(args.seq), "--method", method], env_ours))
                theirs.append(run_json([sys.executable, os.path.abspath(__file__), "--torch-worker", "--threads",
                                        str(threads), "--steps", str(args.steps), "--batch", str(args.batch), "--seq",
                                        str(args.seq), "--method", method], env_torch))
            med = lambda runs, key: statistics.median(r[key] for r in runs)
            o, t = med(ours, "tokens_per_s"), med(theirs, "tokens_per_s")
            step_ms[(method, threads)] = (med(ours, "ms_per_step"), med(theirs, "ms_per_step"))
            runs = " ".join(f"{r['tokens_per_s']:.0f}" for r in ours) + " | " + " ".join(
                f"{r['tokens_per_s']:.0f}" for r in theirs)
            mib = lambda runs: med(runs, "peak_mem_bytes") / 2**20
            print(f"{method:>6} {threads:>7} {o:>11.0f} {t:>14.0f} {o / t:>6.2f} {mib(ours):>9.0f} {mib(theirs):>11.0f}"
                  f"   {runs}", flush=True)
    for threads in args.threads:
        if ("full", threads) in step_ms and ("lora", threads) in step_ms:
            (of, tf), (ol, tl) = step_ms[("full", threads)], step_ms[("lora", threads)]
            print(f"LoRA step / full step, {threads} threads: ours {ol / of:.2f}, pytorch+peft {tl / tf:.2f}", flush=True)
    print(f"uptime: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
