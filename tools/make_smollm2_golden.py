#!/usr/bin/env python3
"""Goldens for the opt-in SmolLM2 tests (issue 12), made with Hugging Face transformers from the
same GGUF file sllm reads (fetch it first: `make smollm2`). Run with a venv holding torch,
transformers and gguf:

    /work/venv-oracle/bin/python tools/make_smollm2_golden.py

Writes tests/golden/smollm2/
  tokenizer_ids.json  ids of a mixed test set (English, code, numbers, unicode, whitespace runs,
                  special tokens); special tokens matched, no BOS (add_bos_token is false).
  logits.json     for a few fixed prompts: the prompt ids, the log-prob transformers gives each
                  next prompt token (teacher forced), and the top-1 next token after the prompt
                  with its log-prob.

The pre-tokenizer. The file says tokenizer.ggml.pre = "smollm". llama.cpp splits text for it with
"\\p{N}" (each digit alone) and then GPT-2's regex (src/llama-vocab.cpp, llm_tokenizer_bpe, case
LLAMA_VOCAB_PRE_TYPE_SMOLLM), which is what SmolLM2's own tokenizer.json says: Sequence[Digits
(individual_digits), ByteLevel]. transformers 5 has no entry for "smollm" in
integrations/gguf/gguf_tokenizer_mapping.py (GGUF_PRE_TOKENIZER_SPLITS) and falls back to
ByteLevel alone; the two differ where whitespace runs meet digits ("x   2": ByteLevel cuts "  "
and " 2", llama.cpp "   " and "2"). The golden uses transformers' tokenizer with llama.cpp's
pre-tokenizer put back, and the script prints the cases where stock transformers differs.
"""
import json
from pathlib import Path

import numpy as np
import torch
from tokenizers import pre_tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "data" / "models"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = ROOT / "tests" / "golden" / "smollm2"

TEXTS = [
    "Hello, world! How are you today?",
    "The quick brown fox jumps over the lazy dog. It's 5 o'clock; we'll see.",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "for (int i = 0; i < 10; ++i) { sum += a[i] * b[i]; }  // dot product",
    "In 2024, 12345 apples cost $3.99 (or 3,99 €), i.e. 0.5% more than 1e-3.",
    "x   2   y\t\t7\n\n  42  ",
    "Ünïcödé: naïve café, 日本語のテキスト, Привет мир, 😀👍🏽, ١٢٣ and ½.",
    "    indented\n\n\n\ttabs\r\nwindows line\u00a0nbsp  trailing   ",
    "<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
    "<|im_start|>assistant\n",
    "<|endoftext|>text after end<repo_name>sllm<file_sep>main.cpp<|im_end|>",
    "",
]

PROMPTS = [
    "The capital of France is",
    "def add(a, b):\n    return",
    "1, 2, 3, 4, 5,",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat color is the sky on a clear day?<|im_end|>\n<|im_start|>assistant\n",
]


def llama_cpp_smollm_split():
    """llama.cpp's "smollm" pre-tokenizer in transformers' terms (see the module docstring)."""
    return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    stock = AutoTokenizer.from_pretrained(str(MODELS), gguf_file=GGUF)
    tok = AutoTokenizer.from_pretrained(str(MODELS), gguf_file=GGUF)
    tok.backend_tokenizer.pre_tokenizer = llama_cpp_smollm_split()

    cases = []
    for t in TEXTS:
        ids = tok.encode(t, add_special_tokens=False)
        assert tok.decode(ids) == t, t
        plain = stock.encode(t, add_special_tokens=False)
        if plain != ids:
            print(f"stock transformers (ByteLevel only) differs on {t!r}:\n  {plain}\n  {ids}")
        cases.append({"text": t, "ids": ids})
    golden = {"file": GGUF, "pre": "smollm", "bos": tok.bos_token, "eos": tok.eos_token,
              "note": "ids from transformers' GGUF tokenizer with llama.cpp's smollm split (tools/make_smollm2_golden.py)",
              "cases": cases}
    text = json.dumps(golden, indent=1, ensure_ascii=False)
    (OUT / "tokenizer_ids.json").write_text(text + "\n")

    model = AutoModelForCausalLM.from_pretrained(str(MODELS), gguf_file=GGUF, dtype=torch.float32).eval()
    torch.set_num_threads(2)
    prompts = []
    for p in PROMPTS:
        ids = tok.encode(p, add_special_tokens=False)
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].double()
        logp = torch.log_softmax(logits, dim=-1)
        teacher = [float(logp[i, ids[i + 1]]) for i in range(len(ids) - 1)]
        top = int(torch.argmax(logp[-1]))
        prompts.append({"text": p, "ids": ids, "next_logprobs": teacher, "top1": top,
                        "top1_logprob": float(logp[-1, top]), "top1_text": tok.decode([top])})
        print(f"{p[-40:]!r} -> {tok.decode([top])!r} ({float(logp[-1, top]):.4f})")
    golden = {"file": GGUF, "dtype": "float32", "prompts": prompts,
              "note": "transformers' AutoModelForCausalLM.from_pretrained(gguf_file=...), fp32 (tools/make_smollm2_golden.py)"}
    (OUT / "logits.json").write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n")
    for f in sorted(OUT.glob("*.json")):
        print(f"{f}: {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
