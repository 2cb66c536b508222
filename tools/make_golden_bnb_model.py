#!/usr/bin/env python3
"""Writes tests/golden/quant/hf_bnb_gpt2/ and hf_bnb_llama/: tiny models quantized to 4 bits by
transformers + bitsandbytes themselves and saved with save_pretrained, so the C++ test
(tests/quant/test_bnb_files.cpp) checks that sllm reads the files the Hub publishes. Dev-time
only: `make test` reads the committed files and never needs Python.

    pip install torch==2.15.0 transformers==5.25.0 bitsandbytes==0.50.2 safetensors accelerate  # in a venv
    python tools/make_golden_bnb_model.py
    # opt-in reverse check: transformers loads the 4-bit directories sllm writes
    SLLM_BNB_OUT=/tmp/sllm_bnb build/tests/test_quant --gtest_filter='*SavedForTransformers*'
    python tools/make_golden_bnb_model.py --check-sllm /tmp/sllm_bnb

Deterministic: the same tensors every run (only the order of the metadata keys in
golden.safetensors' header may change: safetensors' writer keeps them in a hash map).
Made with transformers 5.25.0, bitsandbytes 0.50.2 (its CPU path: no GPU needed), torch 2.15.
For each family a float32 model with seeded weights is saved plainly, then loaded with
    BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                       bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.float32)
on the CPU and saved again: that second save_pretrained is the fixture (config.json with
quantization_config, model.safetensors with the packed weights and QuantState keys,
generation_config.json). Beside it, golden.safetensors (sllm-golden format, see
tests/golden/README.md):
    input_ids  I32 (2, 16)     a fixed batch
    logits     F32 (2, 16, V)  the quantized model's output in transformers (bnb dequantizes
                               each weight to float32, then torch's float32 matmul)
    dequant.<P>.weight F32 (out, in)  bitsandbytes.functional.dequantize_4bit of a few Linears:
                               GPT-2's h.0.mlp.c_fc (320 blocks: two nested blocks, the second
                               short), Llama's layers.0.self_attn.k_proj (800 weights: a short
                               last 4-bit block of 32) and layers.0.mlp.gate_proj (265 blocks)
bitsandbytes 0.50.2's CPU dequantize_4bit (its native AVX-512 kernel, backends/cpu/ops.py)
returns wrong values for some shapes whose rows are not a multiple of the blocksize: (64, 272)
and (64, 96) are off by more than 1, (40, 424) and (64, 136) are right, while its pure-torch
path (backends/default/ops.py _dequantize_4bit_compute, the flat block layout its quantizer
and the CUDA kernels use) stays within the quantization bound. A first GPT-2 with n_inner 272
hit it in mlp.c_proj (64, 272), and transformers' logits were off by 0.29 of their scale. So
the script checks that both paths agree on every weight before writing anything, and the
shapes avoid the bug. Sizes are also picked for edges: Llama's hidden size 40 makes k_proj (2 kv heads of 10) end
in a half block; the MLP widths give more than 256 blocks, so double quantization has two
nested blocks. Weights are N(0, 0.2^2) (biases N(0, 0.1^2), norm weights 1 + N(0, 0.2^2)) so
the model is far from linear and a wrong code or scale moves the logits visibly.
"""
import json
import os
import shutil
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file
from transformers import (AutoModelForCausalLM, BitsAndBytesConfig, GPT2Config, GPT2LMHeadModel, LlamaConfig,
                          LlamaForCausalLM)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "golden", "quant")

CASES = {
    "gpt2": (lambda: GPT2LMHeadModel(GPT2Config(vocab_size=96, n_positions=32, n_embd=64, n_layer=2, n_head=4,
                                                n_inner=320, bos_token_id=0, eos_token_id=0)),
             ["transformer.h.0.mlp.c_fc"]),
    "llama": (lambda: LlamaForCausalLM(LlamaConfig(vocab_size=96, hidden_size=40, intermediate_size=424,
                                                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                                   max_position_embeddings=32, rope_theta=10000.0, rms_norm_eps=1e-5,
                                                   tie_word_embeddings=False, bos_token_id=0, eos_token_id=0,
                                                   pad_token_id=None)),
              ["model.layers.0.self_attn.k_proj", "model.layers.0.mlp.gate_proj"]),
}

BNB = dict(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
           bnb_4bit_compute_dtype=torch.float32)


def seeded(make, seed):
    torch.manual_seed(seed)
    model = make().to(torch.float32).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or ".ln_" in name or name.endswith("ln_f.weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape) if name.endswith("weight") else 0.1 * torch.randn(p.shape))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape))
            else:
                p.copy_(0.2 * torch.randn(p.shape))
    return model


def module(model, path):
    m = model
    for part in path.split("."):
        m = getattr(m, part)
    return m


def reference_forward(model, ids):
    """The float32 logits through bitsandbytes' generic path: each weight dequantized to
    float32 (dequantize_4bit), then torch's matmul. On a CPU with AVX512-BF16, Linear4bit's
    forward otherwise repacks the weight for a fused CPU kernel (nn/modules.py,
    _convert_weight_packed_for_cpu), which needs out_features divisible by 32 (Llama's k_proj
    here has 20) and computes in another order."""
    import bitsandbytes as bnb
    for m in model.modules():
        if isinstance(m, bnb.nn.Linear4bit):
            m.support_avx512bf16_for_cpu = False
    return model(input_ids=ids).logits.float()


def check_dequantization_paths(model):
    """Every Linear4bit's weight dequantizes the same through bitsandbytes' CPU kernel (what
    transformers' forward uses) and its pure-torch reference path (see the docstring)."""
    import bitsandbytes as bnb
    import bitsandbytes.functional as F
    from bitsandbytes.backends.default.ops import _dequantize_4bit_compute
    from bitsandbytes.backends.utils import _get_4bit_code
    for name, m in model.named_modules():
        if not isinstance(m, bnb.nn.Linear4bit):
            continue
        qs = m.weight.quant_state
        absmax = F.dequantize_blockwise(qs.absmax, qs.state2) + qs.offset if qs.nested else qs.absmax
        flat = _dequantize_4bit_compute(m.weight.data.reshape(-1), absmax, _get_4bit_code(qs.quant_type, absmax.device),
                                        qs.blocksize, qs.shape, torch.float32)
        kernel = F.dequantize_4bit(m.weight.data, qs)
        if not torch.equal(flat, kernel):
            raise SystemExit(f"{name}: bitsandbytes' CPU dequantize_4bit differs from its reference path by "
                             f"{(flat - kernel).abs().max().item():.3g} for shape {tuple(qs.shape)}: pick other sizes")


def make(family, seed):
    import bitsandbytes.functional as F
    build, dequant_paths = CASES[family]
    out = os.path.join(OUT, f"hf_bnb_{family}")
    with tempfile.TemporaryDirectory() as plain:
        seeded(build, seed).save_pretrained(plain)
        model = AutoModelForCausalLM.from_pretrained(plain, quantization_config=BitsAndBytesConfig(**BNB),
                                                     device_map="cpu", dtype=torch.float32).eval()
    check_dequantization_paths(model)
    if os.path.isdir(out):
        shutil.rmtree(out)
    model.save_pretrained(out)
    gen = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, model.config.vocab_size, (2, 16), generator=gen)
    with torch.no_grad():
        logits = reference_forward(model, ids)
    tensors = {"input_ids": ids.to(torch.int32).contiguous(), "logits": logits.contiguous()}
    for path in dequant_paths:
        w = module(model, path).weight
        tensors[f"dequant.{path}.weight"] = F.dequantize_4bit(w.data, w.quant_state).float().contiguous()
    save_file(tensors, os.path.join(out, "golden.safetensors"),
              metadata={"format": "sllm-golden", "version": "1", "kind": "bnb_model", "family": family,
                        "quant": "nf4+dq", "blocksize": "64"})
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"{out}: {sorted(os.listdir(out))}, {size} bytes")


def check_sllm(root):
    """transformers loads the 4-bit directories sllm wrote (test_quant with SLLM_BNB_OUT) and
    gives the logits sllm computed on them."""
    ok = True
    for family in CASES:
        d = os.path.join(root, family)
        model = AutoModelForCausalLM.from_pretrained(d, device_map="cpu", dtype=torch.float32).eval()
        check_dequantization_paths(model)
        ref = load_file(os.path.join(d, "sllm_logits.safetensors"))
        with torch.no_grad():
            logits = reference_forward(model, ref["input_ids"].to(torch.int64))
        err = (logits - ref["logits"]).abs().max().item() / ref["logits"].abs().max().item()
        print(f"{family}: transformers on sllm's 4-bit directory, max |logits - sllm's| / max |sllm's| = {err:.2e}")
        ok = ok and err < 1e-5
    return ok


def main():
    if "--check-sllm" in sys.argv[1:]:
        sys.exit(0 if check_sllm(sys.argv[sys.argv.index("--check-sllm") + 1]) else 1)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    make("gpt2", 10)
    make("llama", 20)


if __name__ == "__main__":
    main()
