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

PyTorch gets its best setting on this machine: OPENBLAS_CORETYPE=SKYLAKEX (Debian's
DYNAMIC_ARCH OpenBLAS otherwise mis-detects the CPU) and OMP_WAIT_POLICY=PASSIVE (spinning
OpenMP workers steal the few cores), plus torch.set_num_threads(threads).

Usage (dev-time only; sllm never needs PyTorch):
  /usr/bin/python3 tools/bench_vs_pytorch.py [--sllm build/sllm] [--threads 1 2] [--rounds 2]
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

SMALL = dict(vocab=8192, n_ctx=256, n_layer=6, n_head=6, n_embd=384, n_inner=1536)


def torch_worker(threads, batch, seq, steps):
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
    params = [(n, p) for n, p in model.named_parameters()]
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
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        elapsed = (time.perf_counter() - t0) * 1000.0
        if s >= 2:
            ms.append(elapsed)
    median = statistics.median(ms)
    print(json.dumps({"config": "small", "batch": batch, "seq": seq, "threads": threads, "ms_per_step": median,
                      "tokens_per_s": batch * seq / (median / 1000.0), "torch": torch.__version__}))


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
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        torch_worker(args.threads[0], args.batch, args.seq, args.steps)
        return
    if not os.access(args.sllm, os.X_OK):
        sys.exit(f"error: {args.sllm} is not an executable ---> HINT: build it (cmake --build build --target sllm) "
                 "or pass --sllm PATH")

    print(f"uptime: {os.getloadavg()} (load average 1/5/15 min)", flush=True)
    print(f"{'threads':>7} {'ours tok/s':>11} {'pytorch tok/s':>14} {'ratio':>6}   runs (ours | pytorch)", flush=True)
    for threads in args.threads:
        env_ours = dict(os.environ, OMP_NUM_THREADS=str(threads))
        env_torch = dict(os.environ, OPENBLAS_CORETYPE="SKYLAKEX", OMP_WAIT_POLICY="PASSIVE",
                         OMP_NUM_THREADS=str(threads))
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(run_json([args.sllm, "bench", "train", "--config", "small", "--json", "--threads", str(threads),
                                  "--steps", str(args.steps), "--batch", str(args.batch), "--seq", str(args.seq)],
                                 env_ours)["tokens_per_s"])
            theirs.append(run_json([sys.executable, os.path.abspath(__file__), "--torch-worker", "--threads",
                                    str(threads), "--steps", str(args.steps), "--batch", str(args.batch), "--seq",
                                    str(args.seq)], env_torch)["tokens_per_s"])
        o, t = statistics.median(ours), statistics.median(theirs)
        runs = " ".join(f"{x:.0f}" for x in ours) + " | " + " ".join(f"{x:.0f}" for x in theirs)
        print(f"{threads:>7} {o:>11.0f} {t:>14.0f} {o / t:>6.2f}   {runs}", flush=True)
    print(f"uptime: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
