#!/usr/bin/env python3
"""Golden fixtures for the reward model (issue 11), read by tests/rl/test_reward_model.cpp.

Writes, under tests/golden/rl/:
  reward_loss.safetensors   the Bradley-Terry loss mean(-log sigmoid(r_c - r_r)) and its
                            gradient with respect to both reward vectors (torch autograd,
                            float64), on margins from -40 to +40 (where a naive
                            log(sigmoid(d)) underflows to log(0) in float32)
  reward_gpt2_tiny/         a random transformers GPT2ForSequenceClassification (num_labels 1):
  reward_llama_tiny/        and a LlamaForSequenceClassification, each saved by
                            save_pretrained (config.json + model.safetensors) with
                            golden.safetensors: token ids (B, T) right-padded with
                            pad_token_id, each row's length, and transformers' scores
                            (the logits at the rightmost non-pad token) in float64

Run with the oracle venv (torch + transformers); deterministic for its seed:
  /work/venv-oracle/bin/python tools/gen_rl_reward_golden.py
Inputs and weights are float32 (what the files store); reference values are computed in
float64 from those float32 values and stored rounded to float32, like tools/make_golden.py.
"""
import json
import os
import shutil
import struct

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import (GPT2Config, GPT2ForSequenceClassification, LlamaConfig,
                          LlamaForSequenceClassification)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "rl")
META = {"format": "sllm-golden", "version": "1"}
DTYPES = {torch.float32: "F32", torch.int32: "I32"}


def save_file(tensors, path, metadata):
    """A plain safetensors writer with sorted keys, so the same values give the same bytes
    (the safetensors package orders its metadata by hash, differently from run to run).
    Read back and compared bit for bit after writing."""
    header, offset, blobs = {"__metadata__": dict(sorted(metadata.items()))}, 0, []
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        blob = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    back = load_file(path)
    assert all(torch.equal(back[k], tensors[k].contiguous()) for k in tensors), path


def loss_fixture():
    g = torch.Generator().manual_seed(11)
    chosen = (torch.randn(9, generator=g) * 3).float()
    rejected = (torch.randn(9, generator=g) * 3).float()
    # Extreme margins both ways, and a tie.
    chosen[:3] = torch.tensor([40.0, -40.0, 1.5])
    rejected[:3] = torch.tensor([-0.5, 0.25, 1.5])
    c = chosen.double().requires_grad_()
    r = rejected.double().requires_grad_()
    # -log sigmoid(d) through logsigmoid: the stable reference (Bradley-Terry, Ouyang et al. 2022 eq. 1).
    loss = -F.logsigmoid(c - r).mean()
    loss.backward()
    save_file({"chosen": chosen, "rejected": rejected, "loss": loss.detach().float().reshape(1),
               "dchosen": c.grad.float(), "drejected": r.grad.float()},
              os.path.join(ROOT, "reward_loss.safetensors"), metadata=dict(META, kind="bradley_terry"))


def model_fixture(name, model, vocab, pad):
    out = os.path.join(ROOT, name)
    shutil.rmtree(out, ignore_errors=True)
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(out, extra)):
            os.remove(os.path.join(out, extra))
    g = torch.Generator().manual_seed(7)
    lengths = [5, 9, 1, 12]
    T = max(lengths)
    ids = torch.full((len(lengths), T), pad, dtype=torch.int32)
    for b, n in enumerate(lengths):
        # Ids drawn from [1, vocab) so no real token equals pad (0): transformers' rightmost
        # non-pad token is then each row's last token, the one sllm reads.
        ids[b, :n] = torch.randint(1, vocab, (n,), generator=g, dtype=torch.int32)
    with torch.no_grad():
        scores = model.double()(input_ids=ids.long()).logits[:, 0]
    save_file({"ids": ids, "lengths": torch.tensor(lengths, dtype=torch.int32), "scores": scores.float()},
              os.path.join(out, "golden.safetensors"), metadata=dict(META, kind="reward_model"))


def main():
    os.makedirs(ROOT, exist_ok=True)
    torch.manual_seed(1234)
    loss_fixture()
    gpt2 = GPT2Config(vocab_size=64, n_positions=32, n_embd=16, n_layer=2, n_head=2, n_inner=64,
                      num_labels=1, pad_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    torch.manual_seed(1)
    m = GPT2ForSequenceClassification(gpt2)
    with torch.no_grad():  # a score head larger than the 0.02 init, so scores differ visibly
        m.score.weight.normal_(0, 0.5)
    model_fixture("reward_gpt2_tiny", m, 64, 0)
    llama = LlamaConfig(vocab_size=64, max_position_embeddings=32, hidden_size=16, intermediate_size=48,
                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                        num_labels=1, pad_token_id=0, tie_word_embeddings=False)
    torch.manual_seed(2)
    m = LlamaForSequenceClassification(llama)
    with torch.no_grad():
        m.score.weight.normal_(0, 0.5)
    model_fixture("reward_llama_tiny", m, 64, 0)


if __name__ == "__main__":
    main()
