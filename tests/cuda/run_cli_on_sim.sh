#!/usr/bin/env bash
# The `--device cuda` command-line paths end to end, on the CUDA simulator (build-sim's sllm,
# where the "GPU" is kernels/cuda_sim): bench train in bf16 and fp32 (JSON keys, finite
# losses), a short bf16 pretraining run with a checkpoint and a resume, and the errors for
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
echo "cli on the CUDA simulator: all checks passed"
