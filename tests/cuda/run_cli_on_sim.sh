#!/usr/bin/env bash
# The `--device cuda` command-line paths end to end, on the CUDA simulator (build-sim's sllm,
# where the "GPU" is kernels/cuda_sim): bench train in bf16 and fp32 (JSON keys, finite
# losses), a short bf16 pretraining run with a checkpoint and a resume, LoRA fine-tuning on
# it (fp32 against the CPU, bf16), and the errors for
# bf16 where it cannot run. Tiny sizes: the simulator runs every GPU thread as a fiber.
# Usage: tests/cuda/run_cli_on_sim.sh build-sim/sllm
set -euo pipefail
SLLM=$(realpath "${1:?usage: run_cli_on_sim.sh path/to/sllm (a -DSLLM_CUDA=SIM build)}")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
fail() { echo "FAIL: $*" >&2; exit 1; }
json_field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
finite() { python3 -c "import math,sys; sys.exit(0 if math.isfinite(float(sys.argv[1])) else 1)" "$1"; }

# follows_cpu NAME: NAME_fp32 (cuda) logs NAME_cpu's losses within 1e-4, NAME_bf16's are finite
# and its first within 5% of the CPU's (3 steps each).
follows_cpu() {
  python3 - "$1_cpu/metrics.jsonl" "$1_fp32/metrics.jsonl" "$1_bf16/metrics.jsonl" <<'PY'
import json, math, sys
cpu, fp32, bf16 = ([json.loads(l) for l in open(p)] for p in sys.argv[1:])
assert len(cpu) == len(fp32) == len(bf16) == 3, (len(cpu), len(fp32), len(bf16))
for a, b in zip(cpu, fp32):
    assert abs(a["loss"] - b["loss"]) <= 1e-4 * max(1.0, abs(a["loss"])), (a["loss"], b["loss"])
assert all(math.isfinite(r["loss"]) for r in bf16)
assert abs(bf16[0]["loss"] - cpu[0]["loss"]) <= 0.05 * abs(cpu[0]["loss"]), (bf16[0]["loss"], cpu[0]["loss"])
PY
}

echo "== bench train --device cuda, bf16 and fp32"
for precision in bf16 tf32 fp32; do
  out=$("$SLLM" bench train --config tiny --device cuda --precision "$precision" --batch 2 --seq 16 --steps 2 --json)
  [ "$(json_field "$out" precision)" = "$precision" ] || fail "precision key: $out"
  [ "$(json_field "$out" device)" = "cuda" ] || fail "device key: $out"
  json_field "$out" mfu >/dev/null || fail "no mfu: $out"
  finite "$(json_field "$out" last_loss)" || fail "loss not finite: $out"
done
# auto means bf16 on cuda
out=$("$SLLM" bench train --config tiny --device cuda --batch 2 --seq 16 --steps 1 --json)
[ "$(json_field "$out" precision)" = "bf16" ] || fail "--precision auto on cuda: $out"

echo "== bf16 where it cannot run: an error with a hint, non-zero exit"
if "$SLLM" bench train --config tiny --device cpu --precision bf16 --steps 1 >out.txt 2>err.txt; then
  fail "bf16 on the CPU succeeded"
fi
grep -q "HINT" err.txt || fail "no hint: $(cat err.txt)"
if "$SLLM" bench train --config tiny --device cuda --precision fp16 --steps 1 >out.txt 2>err.txt; then
  fail "--precision fp16 accepted"
fi

echo "== pretrain --device cuda --precision bf16, checkpoint, resume"
"$SLLM" data synth --out synth --size-mb 1 --seed 1 >/dev/null 2>&1
"$SLLM" tokenizer train --input synth/train.txt --vocab-size 300 --pattern gpt2 --out tok >/dev/null 2>&1
"$SLLM" prepare --tokenizer tok --input synth/train.txt --out data >/dev/null 2>&1
common=(--config tiny --data data --tokenizer tok --out run --batch 2 --seq 16 --eval-every 2 --eval-batches 1 --save-every 2
        --device cuda --precision bf16 --quiet)
"$SLLM" pretrain "${common[@]}" --steps 4 --stop-at 2 2>/dev/null
"$SLLM" pretrain "${common[@]}" --steps 4 --resume 2>/dev/null
[ -f run/metrics.jsonl ] || fail "no metrics.jsonl"
python3 - run/metrics.jsonl <<'PY' || fail "metrics"
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
steps = [r["step"] for r in rows if "loss" in r]
assert steps == sorted(set(steps)) and steps[-1] == 4, steps
assert all(math.isfinite(r["loss"]) for r in rows if "loss" in r)
PY
ls run | grep -q . || fail "no checkpoint"

echo "== generate and score --device cuda (fp32, KV cache on the device) agree with the CPU"
gen() { "$SLLM" generate --model run --prompt "Once upon" --max-new-tokens 12 --temperature 0 --device "$1" 2>/dev/null; }
[ "$(gen cuda)" = "$(gen cpu)" ] || fail "greedy text differs: cuda '$(gen cuda)' vs cpu '$(gen cpu)'"
score_cpu=$("$SLLM" score --model run --text "Once upon a time" --device cpu)
score_gpu=$("$SLLM" score --model run --text "Once upon a time" --device cuda)
python3 - "$score_cpu" "$score_gpu" <<'PY' || fail "score differs: $score_cpu vs $score_gpu"
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert abs(a["loss"] - b["loss"]) <= 1e-4 * max(1.0, abs(a["loss"])), (a["loss"], b["loss"])
assert len(a["logprobs"]) == len(b["logprobs"])
PY
echo "== sft --method lora --device cuda: fp32 follows the CPU run (the fused LoRA op), bf16 trains"
for i in 1 2 3 4 5 6; do
  echo "{\"messages\": [{\"role\": \"user\", \"content\": \"Who is $i?\"}, {\"role\": \"assistant\", \"content\": \"It is $i.\"}]}"
done >sft.jsonl
lora=(--model run --data sft.jsonl --method lora --lora-r 4 --batch 2 --seq 40 --steps 3 --val-count 1 --eval-every 3 --quiet)
"$SLLM" sft "${lora[@]}" --out lora_cpu --device cpu 2>/dev/null
"$SLLM" sft "${lora[@]}" --out lora_fp32 --device cuda --precision fp32 2>/dev/null
"$SLLM" sft "${lora[@]}" --out lora_bf16 --device cuda --precision bf16 2>/dev/null
follows_cpu lora || fail "LoRA sft on cuda"
for d in lora_cpu lora_fp32 lora_bf16; do
  [ -f "$d/$(cat "$d/latest")/adapter_model.safetensors" ] || fail "$d: no adapter in its checkpoint"
done
out=$("$SLLM" bench train --config tiny --device cuda --method lora --lora-r 4 --batch 2 --seq 16 --steps 1 --json)
[ "$(json_field "$out" method)" = "lora" ] || fail "bench train --method lora on cuda: $out"
finite "$(json_field "$out" last_loss)" || fail "bench train --method lora on cuda: loss not finite: $out"

echo "== bench train --profile: a per-kernel table in the JSON; CUDA only"
out=$("$SLLM" bench train --config tiny --device cuda --batch 2 --seq 16 --steps 1 --profile --json)
python3 - "$out" <<'PY' || fail "--profile JSON: $out"
import json, sys
r = json.loads(sys.argv[1])
rows = r["profile"]
assert 0 < len(rows) <= 40, len(rows)
assert all(row["name"] and row["calls_per_step"] > 0 and row["ms_per_step"] >= 0 for row in rows), rows
assert any(row["name"].startswith("cublas gemm") for row in rows), [row["name"] for row in rows]
assert r["ms_per_step"] > 0
PY
if "$SLLM" bench train --config tiny --device cpu --steps 1 --profile >out.txt 2>err.txt; then
  fail "--profile on the CPU succeeded"
fi
grep -q "HINT" err.txt || fail "--profile --device cpu: no hint: $(cat err.txt)"
echo "== QLoRA on cuda: sft fp32 follows the CPU run over the same NF4 base, bf16 trains; a 4-bit directory scores alike"
qlora=(--model run --data sft.jsonl --method qlora --lora-r 4 --batch 2 --seq 40 --steps 3 --val-count 1 --eval-every 3 --quiet)
"$SLLM" sft "${qlora[@]}" --out qlora_cpu --device cpu 2>/dev/null
"$SLLM" sft "${qlora[@]}" --out qlora_fp32 --device cuda --precision fp32 2>/dev/null
"$SLLM" sft "${qlora[@]}" --out qlora_bf16 --device cuda --precision bf16 --grad-checkpoint 2>/dev/null
follows_cpu qlora || fail "QLoRA sft on cuda"
"$SLLM" quantize --model run --out q4 >/dev/null
q_cpu=$("$SLLM" score --model q4 --text "Once upon a time" --device cpu)
q_gpu=$("$SLLM" score --model q4 --text "Once upon a time" --device cuda)
python3 - "$q_cpu" "$q_gpu" <<'PY' || fail "score on a 4-bit directory differs: $q_cpu vs $q_gpu"
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert abs(a["loss"] - b["loss"]) <= 1e-4 * max(1.0, abs(a["loss"])), (a["loss"], b["loss"])
PY

echo "== batched generation and RL on cuda (issue 11): bench generate, then PPO and GRPO iterations"
out=$("$SLLM" bench generate --model run --device cuda --batch 3 --new-tokens 6 --prompt-tokens 4 --repeats 1 --json)
[ "$(json_field "$out" device)" = "cuda" ] || fail "bench generate device key: $out"
finite "$(json_field "$out" tokens_per_s)" || fail "bench generate: $out"
for i in 1 2 3 4; do echo "{\"prompt\": \"Once upon\", \"sentences\": 0, \"verifier\": \"sentence-count\"}"; done >prompts.jsonl
rl=(--model run --prompts prompts.jsonl --reward verifier --template none --steps 2 --batch 2 --mini-batch-size 2
    --max-new-tokens 3 --lora-r 4 --quiet)
"$SLLM" ppo "${rl[@]}" --out ppo_cuda --device cuda >/dev/null
"$SLLM" grpo "${rl[@]}" --num-generations 2 --out grpo_cuda --device cuda >/dev/null
python3 - ppo_cuda/metrics.jsonl grpo_cuda/metrics.jsonl <<'PY' || fail "RL on cuda: metrics"
import json, math, sys
for path in sys.argv[1:]:
    rows = [json.loads(l) for l in open(path)]
    assert [r["step"] for r in rows] == [1, 2], path
    for r in rows:
        # the update's first minibatch is the rollout policy's own: the same kernels, ratio 1
        assert r["first_ratio"] == 1.0 and r["first_clipfrac"] == 0.0, r
        assert all(math.isfinite(v) for v in r.values() if isinstance(v, float)), r
PY
[ -f "ppo_cuda/ckpt-2/value_head.safetensors" ] || fail "PPO on cuda: no value head in the checkpoint"

echo "cli on the CUDA simulator: all checks passed"
