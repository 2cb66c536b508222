#!/usr/bin/env python3
"""Writes the PEFT LoRA golden fixtures under tests/golden/peft/ (dev-time only; `make test`
reads the committed files and never needs Python), and checks that PEFT loads sllm's adapters.

    /usr/bin/python3 -m venv --system-site-packages /tmp/peft-venv
    /tmp/peft-venv/bin/pip install transformers==4.38.2 peft==0.10.0 accelerate==0.27.2
    /tmp/peft-venv/bin/python tools/make_peft_golden.py
    # opt-in reverse check: test_lora writes sllm's re-saved adapters when told where
    SLLM_PEFT_OUT=/tmp/sllm_peft build/tests/test_lora --gtest_filter="*ReSavedBySllm*"
    /tmp/peft-venv/bin/python tools/make_peft_golden.py --check-sllm /tmp/sllm_peft

For each tiny base model of tests/golden/ (gpt2_tiny: Conv1D c_attn/c_proj/c_fc, so PEFT's
fan_in_fan_out; llama_tiny: q/k/v/o and gate/up/down) PEFT's get_peft_model adds a LoRA
adapter, B is given seeded random values (PEFT starts B at zero, which would test nothing),
and the fixture holds:
    tests/golden/peft/<name>/adapter_config.json, adapter_model.safetensors   (save_pretrained)
    tests/golden/peft/<name>/golden.safetensors: ids, targets (I32), logits, loss and the
        gradient of every lora_A / lora_B under PEFT's saved names (F32), computed in float32;
        then 3 AdamW steps (lr 1e-2, betas 0.9/0.95, eps 1e-8, weight decay 0.1) on A and B:
        the loss before each step ("adamw.losses") and A, B after them ("adamw.<name>").
"""
import json
import os
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests", "golden")

CASES = {
    # name: (base fixture, LoraConfig arguments)
    "gpt2_all_linear": ("gpt2_tiny", dict(r=4, lora_alpha=8, target_modules=["c_attn", "c_proj", "c_fc"],
                                          fan_in_fan_out=True)),
    "llama_qv_rslora": ("llama_tiny", dict(r=4, lora_alpha=6, use_rslora=True,
                                           target_modules=["q_proj", "v_proj", "down_proj"])),
}


def peft_model(base, kwargs, seed):
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(os.path.join(GOLDEN, base), torch_dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", lora_dropout=0.0, bias="none", **kwargs))
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    return model


def saved_name(param_name):
    # PEFT's save strips the adapter name: "...q_proj.lora_A.default.weight" -> "...q_proj.lora_A.weight".
    return param_name.replace(".default.", ".")


def batch(vocab, seed):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (2, 8), generator=gen, dtype=torch.int64)
    targets = torch.randint(0, vocab, (2, 8), generator=gen, dtype=torch.int64)
    return ids, targets


def make(name, base, kwargs):
    out = os.path.join(GOLDEN, "peft", name)
    model = peft_model(base, kwargs, seed=len(name))
    model.save_pretrained(out)
    os.remove(os.path.join(out, "README.md"))  # PEFT's model-card template, nothing of the adapter
    with open(os.path.join(out, "adapter_config.json")) as f:
        config = json.load(f)
    config["base_model_name_or_path"] = "tests/golden/" + base  # not this machine's absolute path
    with open(os.path.join(out, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    ids, targets = batch(model.config.vocab_size, seed=5)
    logits = model(input_ids=ids).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    loss.backward()
    tensors = {"ids": ids.to(torch.int32), "targets": targets.to(torch.int32),
               "logits": logits.detach().contiguous(), "loss": loss.detach().reshape(1)}
    for n, p in model.named_parameters():
        if "lora_" in n:
            tensors["grad." + saved_name(n)] = p.grad.detach().contiguous()
    # 3 AdamW steps on the adapter alone, with sllm's defaults spelled out (torch's differ):
    # the loss before each step and every A and B after the last.
    lora_params = [(n, p) for n, p in model.named_parameters() if "lora_" in n]
    opt = torch.optim.AdamW([p for _, p in lora_params], lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        logits = model(input_ids=ids).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    tensors["adamw.losses"] = torch.tensor(losses, dtype=torch.float32)
    for n, p in lora_params:
        tensors["adamw." + saved_name(n)] = p.detach().clone().contiguous()
    save_file(tensors, os.path.join(out, "golden.safetensors"),
              metadata={"torch": torch.__version__, "peft": __import__("peft").__version__})
    print(f"wrote {out}: {len(lora_params)} LoRA gradients, AdamW losses {losses}")


def check_sllm(root):
    """PEFT loads the adapters sllm re-saved (test_lora with SLLM_PEFT_OUT) and gives the golden logits."""
    from safetensors.torch import load_file
    ok = True
    for name, (base, _) in CASES.items():
        model = AutoModelForCausalLM.from_pretrained(os.path.join(GOLDEN, base), torch_dtype=torch.float32)
        model = PeftModel.from_pretrained(model, os.path.join(root, name))
        golden = load_file(os.path.join(GOLDEN, "peft", name, "golden.safetensors"))
        with torch.no_grad():
            logits = model(input_ids=golden["ids"].to(torch.int64)).logits
        err = (logits - golden["logits"]).abs().max().item() / golden["logits"].abs().max().item()
        print(f"{name}: PEFT on sllm's adapter, max |logits - golden| / max |golden| = {err:.2e}")
        ok = ok and err < 1e-5
    return ok


def main():
    if "--check-sllm" in sys.argv[1:]:
        sys.exit(0 if check_sllm(sys.argv[sys.argv.index("--check-sllm") + 1]) else 1)
    torch.set_num_threads(1)
    for name, (base, kwargs) in CASES.items():
        make(name, base, kwargs)


if __name__ == "__main__":
    main()
