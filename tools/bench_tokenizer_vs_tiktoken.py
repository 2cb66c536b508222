#!/usr/bin/env python3
"""Side-by-side encode throughput: `sllm bench tokenizer` vs tiktoken, same text, same rank file.

Dev-time only (pip install tiktoken). Nothing is downloaded: tiktoken's Encoding is built
from the local rank file in ../shared/data/tokenizers, with tiktoken's own cl100k pattern.
Also checks that both produce identical ids on the benchmark text and on random Unicode.

usage: python3 tools/bench_tokenizer_vs_tiktoken.py [--sllm build/sllm] [--mb 4] [--repeat 3]
"""
import argparse
import base64
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import tiktoken
import tiktoken_ext.openai_public as openai_public

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data", "tokenizers")


def load_ranks(path):
    ranks = {}
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                b64, rank = line.split()
                ranks[base64.b64decode(b64)] = int(rank)
    return ranks


def official_encoding(name, ranks):
    """tiktoken's own definition of `name`, with the rank loader pointed at our local file."""
    original = openai_public.load_tiktoken_bpe
    openai_public.load_tiktoken_bpe = lambda *a, **k: ranks
    try:
        spec = getattr(openai_public, name)()
    finally:
        openai_public.load_tiktoken_bpe = original
    return tiktoken.Encoding(**spec)


def sllm_encode(sllm, rank_file, pattern, text):
    out = subprocess.run([sllm, "tokenizer", "encode", "--tokenizer", rank_file, "--pattern", pattern],
                         input=text.encode("utf-8"), capture_output=True, check=True)
    return json.loads(out.stdout)


def random_unicode(rng, n):
    blocks = [(0x20, 0x7E)] * 4 + [(0x0A, 0x0D), (0xA0, 0xFF), (0x300, 0x36F), (0x391, 0x3C9), (0x4E00, 0x4FFF),
                                   (0xAC00, 0xAD00), (0x1F600, 0x1F64F), (0x3000, 0x3000), (0x2000, 0x200A)]
    return "".join(chr(rng.randint(*blocks[rng.randrange(len(blocks))])) for _ in range(n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sllm", default=os.path.join(ROOT, "build", "sllm"))
    ap.add_argument("--mb", type=float, default=4.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    rank_file = os.path.join(DATA, "cl100k_base.tiktoken")
    with tempfile.TemporaryDirectory() as tmp:
        text_path = os.path.join(tmp, "bench.txt")
        ours = json.loads(subprocess.run(
            [args.sllm, "bench", "tokenizer", "--json", "--tokenizer", rank_file, "--pattern", "cl100k",
             "--mb", str(args.mb), "--repeat", str(args.repeat), "--dump-text", text_path],
            capture_output=True, check=True).stdout)
        with open(text_path, "rb") as f:
            raw = f.read()
    text = raw.decode("utf-8")

    enc = official_encoding("cl100k_base", load_ranks(rank_file))
    best = float("inf")
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ids = enc.encode_ordinary(text)
        best = min(best, time.perf_counter() - t0)
    theirs = len(raw) / 1e6 / best

    same = sllm_encode(args.sllm, rank_file, "cl100k", text) == ids
    rng = random.Random(0)
    fuzz = [random_unicode(rng, rng.randint(1, 60)) for _ in range(300)]
    fuzz_text = "\n".join(fuzz)
    o200k_file = os.path.join(DATA, "o200k_base.tiktoken")
    fuzz_ok = sllm_encode(args.sllm, rank_file, "cl100k", fuzz_text) == enc.encode_ordinary(fuzz_text)
    o200k = official_encoding("o200k_base", load_ranks(o200k_file))
    fuzz_ok_o200k = sllm_encode(args.sllm, o200k_file, "o200k", fuzz_text) == o200k.encode_ordinary(fuzz_text)

    print(f"text: {len(raw) / 1e6:.2f} MB mixed (English, code, CJK, emoji), cl100k_base, 1 thread, best of {args.repeat}")
    print(f"  sllm      {ours['mb_per_s']:8.2f} MB/s  ({ours['tokens']} tokens)")
    print(f"  tiktoken  {theirs:8.2f} MB/s  ({len(ids)} tokens, tiktoken {tiktoken.__version__})")
    print(f"  ratio sllm/tiktoken = {ours['mb_per_s'] / theirs:.2f}x")
    print(f"  identical ids: bench text {same}, random Unicode cl100k {fuzz_ok}, o200k {fuzz_ok_o200k}")
    return 0 if same and fuzz_ok and fuzz_ok_o200k else 1


if __name__ == "__main__":
    sys.exit(main())
