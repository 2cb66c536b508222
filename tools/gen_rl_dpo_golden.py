#!/usr/bin/env python3
"""Writes tests/golden/rl/dpo_loss.safetensors: the DPO and IPO losses, their gradients with
respect to the four log-probabilities, and the reward metrics, computed by PyTorch in float64
(dev-time only; `make test` reads the committed file and never needs Python). Issue 11.

    /work/venv-oracle/bin/python tools/gen_rl_dpo_golden.py     # torch 2.15; < 1 s

The formulas are TRL's (trl/trainer/dpo_trainer.py, DPOTrainer.dpo_loss and
get_batch_loss_metrics), written out here so that no TRL install is needed:

    logits = (policy_chosen - policy_rejected) - (ref_chosen - ref_rejected)
    sigmoid: losses = -F.logsigmoid(beta * logits)          (Rafailov et al. 2023, eq. 7)
    ipo:     losses = (logits - 1 / (2 * beta)) ** 2         (Azar et al. 2023, eq. 17; beta = tau)
    loss = losses.mean()
    chosen_rewards = beta * (policy_chosen - ref_chosen), rejected_rewards likewise
    accuracy = mean(chosen_rewards > rejected_rewards), margin = mean(chosen - rejected)

(label_smoothing = 0, TRL's default.) The IPO cases use per-token-average-sized values, as TRL
feeds IPO (see src/rl/dpo.h); the loss function itself does not care which it gets.

Cases (`<case>.<key>`, every tensor F32):
    pc, pr, rc, rr        (P)  policy chosen / rejected, reference chosen / rejected log-probs
    loss                  (1)
    d_pc, d_pr, d_rc, d_rr (P) d loss / d input
    chosen_reward, rejected_reward, accuracy, margin  (1)
Metadata: `<case>.beta`, `<case>.loss_type`, `cases` (comma list).

The inputs are drawn in float32 (what the file stores); every reference value is computed in
float64 from those exact values and stored rounded to float32 (tests/golden/README.md).
Deterministic: seeded draws, the same bytes every run.
"""
import json
import os
import struct

import torch
from safetensors.torch import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "golden", "rl", "dpo_loss.safetensors")


def write_safetensors(path, tensors, metadata):
    """A plain safetensors file with sorted header keys, so the bytes never change between runs
    (safetensors' own writer orders the metadata by a hash map). F32 tensors only."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        blob = tensors[name].contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def draw(gen, n, lo, hi):
    return (lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)).float()


def make_case(gen, P, beta, loss_type, scale, extreme=False):
    """Log-probabilities like a sequence's (scale ~ 40: summed over tokens) or a token's average
    (scale ~ 3). The reference sits near the policy, as it does early in training, with both
    signs of h among the pairs; `extreme` adds pairs with |beta * h| ~ 30, where a naive
    log(sigmoid) would underflow."""
    rc = draw(gen, P, -scale, -0.1 * scale)
    rr = draw(gen, P, -scale, -0.1 * scale)
    pc = (rc.double() + draw(gen, P, -0.3, 0.3).double() * scale).float()
    pr = (rr.double() + draw(gen, P, -0.3, 0.3).double() * scale).float()
    if extreme:
        pc[0] = rc[0] + 300.0  # h = +300: beta·h = +30 at beta 0.1
        pc[1] = rc[1] - 300.0  # h = -300: -log σ(-30) ≈ 30, σ(-30) ≈ 1e-13
        pr[0], pr[1] = rr[0], rr[1]
    inputs = {k: v.double().clone().requires_grad_(True) for k, v in (("pc", pc), ("pr", pr), ("rc", rc), ("rr", rr))}
    logits = (inputs["pc"] - inputs["pr"]) - (inputs["rc"] - inputs["rr"])
    if loss_type == "sigmoid":
        losses = -torch.nn.functional.logsigmoid(beta * logits)
    else:
        losses = (logits - 1 / (2 * beta)) ** 2
    loss = losses.mean()
    loss.backward()
    with torch.no_grad():
        chosen = beta * (inputs["pc"] - inputs["rc"])
        rejected = beta * (inputs["pr"] - inputs["rr"])
        out = {
            "pc": pc, "pr": pr, "rc": rc, "rr": rr,
            "loss": loss.detach().reshape(1).float(),
            "chosen_reward": chosen.mean().reshape(1).float(),
            "rejected_reward": rejected.mean().reshape(1).float(),
            "accuracy": (chosen > rejected).double().mean().reshape(1).float(),
            "margin": (chosen - rejected).mean().reshape(1).float(),
        }
        for k in ("pc", "pr", "rc", "rr"):
            out["d_" + k] = inputs[k].grad.float()
    return out


def main():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(11)
    cases = {
        "sigmoid": (8, 0.1, "sigmoid", 40.0, True),
        "sigmoid_beta05": (5, 0.5, "sigmoid", 40.0, False),
        "ipo": (8, 0.1, "ipo", 3.0, False),
        "ipo_beta1": (3, 1.0, "ipo", 3.0, False),
    }
    tensors, meta = {}, {"format": "sllm-golden", "version": "1", "kind": "dpo_loss", "cases": ",".join(cases)}
    for name, (P, beta, loss_type, scale, extreme) in cases.items():
        for k, v in make_case(gen, P, beta, loss_type, scale, extreme).items():
            tensors[f"{name}.{k}"] = v.contiguous()
        meta[f"{name}.beta"] = repr(beta)
        meta[f"{name}.loss_type"] = loss_type
        print(f"{name}: loss {tensors[name + '.loss'].item():.6f}, accuracy {tensors[name + '.accuracy'].item():.3f}")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    write_safetensors(OUT, tensors, meta)
    back = load_file(OUT)  # safetensors' own reader, independent of the writer above
    assert set(back) == set(tensors) and all(torch.equal(back[k], tensors[k]) for k in tensors)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
