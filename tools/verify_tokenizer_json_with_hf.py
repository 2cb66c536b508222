#!/usr/bin/env python3
"""Checks that Hugging Face `tokenizers` loads a tokenizer.json written by sllm and encodes
exactly as sllm does. Dev-time only (pip install tokenizers); not part of `make test`.

Trains a small tokenizer per pattern with `sllm tokenizer train`, then compares ids on
varied text (English, code, digits, CJK, emoji, odd whitespace, random Unicode).

usage: python3 tools/verify_tokenizer_json_with_hf.py [--sllm build/sllm]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def random_unicode(rng, n):
    blocks = [(0x20, 0x7E)] * 4 + [(0x0A, 0x0D), (0xA0, 0xFF), (0x300, 0x36F), (0x391, 0x3C9), (0x4E00, 0x4FFF),
                                   (0xAC00, 0xAD00), (0x1F600, 0x1F64F), (0x3000, 0x3000), (0x660, 0x669)]
    return "".join(chr(rng.randint(*blocks[rng.randrange(len(blocks))])) for _ in range(n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sllm", default=os.path.join(ROOT, "build", "sllm"))
    args = ap.parse_args()
    rng = random.Random(0)
    probes = ["Hello world! We've got 12345 apples; they're GREAT.\n\n  ok", "for (int i = 0; i < n; ++i) {\n\tx += 2;\n}\n",
              "日本語のテキスト、そして中文。", "emoji 🚀🔥 and   spaces   ", "MixedCASEWords and ALLCAPS's"]
    probes += [random_unicode(rng, rng.randint(1, 80)) for _ in range(200)]
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "corpus.txt")
        subprocess.run([args.sllm, "bench", "tokenizer", "--mb", "0.5", "--repeat", "1", "--dump-text", corpus],
                       check=True, capture_output=True)
        for pattern in ["gpt2", "cl100k", "o200k", "digits"]:
            out = os.path.join(tmp, pattern)
            subprocess.run([args.sllm, "tokenizer", "train", "--input", corpus, "--vocab-size", "2000",
                            "--pattern", pattern, "--out", out], check=True, capture_output=True)
            hf = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
            bad = 0
            for text in probes:
                ours = json.loads(subprocess.run([args.sllm, "tokenizer", "encode", "--tokenizer", out],
                                                 input=text.encode(), capture_output=True, check=True).stdout)
                theirs = hf.encode(text, add_special_tokens=False).ids
                if ours != theirs:
                    bad += 1
                    if bad <= 3:
                        print(f"  {pattern}: mismatch on {text!r}\n    sllm {ours}\n    hf   {theirs}")
            print(f"{pattern}: {len(probes) - bad}/{len(probes)} identical")
            ok = ok and bad == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
