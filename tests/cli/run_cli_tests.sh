#!/usr/bin/env bash
# CLI-level checks of the `sllm` binary: flag errors exit 1 with a hint (never a crash, i.e.
# never a status >= 128 from a signal), and the pipeline synth -> tokenizer -> prepare ->
# pretrain -> plot writes the files each step promises. Usage: run_cli_tests.sh path/to/sllm
set -u
SLLM=${1:?usage: run_cli_tests.sh path/to/sllm}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sllm_cli_test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
failures=0

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# expect_error NAME NEEDLE -- ARGS...: sllm ARGS exits 1 and stderr holds "HINT" and NEEDLE.
expect_error() {
  local name=$1 needle=$2
  shift 3
  "$SLLM" "$@" >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  if [ "$rc" -ne 1 ]; then fail "$name: exit status $rc, expected 1"; cat "$WORK/err" >&2; return; fi
  grep -q "HINT" "$WORK/err" || { fail "$name: no HINT on stderr"; cat "$WORK/err" >&2; }
  grep -qF -- "$needle" "$WORK/err" || { fail "$name: stderr lacks '$needle'"; cat "$WORK/err" >&2; }
}

# expect_ok NAME -- ARGS...: sllm ARGS exits 0.
expect_ok() {
  local name=$1
  shift 2
  "$SLLM" "$@" >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  [ "$rc" -eq 0 ] || { fail "$name: exit status $rc"; cat "$WORK/err" >&2; }
}

expect_file() { [ -s "$1" ] || fail "missing or empty: $1"; }

# ---- help is not an error: usage on stdout, exit 0 ----------------------------------------
expect_ok "pretrain --help" -- pretrain --help
grep -qF -- "--steps" "$WORK/out" || fail "pretrain --help should list --steps on stdout"
expect_ok "tokenizer --help" -- tokenizer --help
grep -qF "train" "$WORK/out" || fail "tokenizer --help should list its verbs"

# ---- errors ------------------------------------------------------------------------------
"$SLLM" >/dev/null 2>"$WORK/err"; rc=$?
[ "$rc" -eq 1 ] || fail "no command: exit status $rc, expected 1"
expect_error "unknown command"      "frobnicate" -- frobnicate
expect_error "unknown data command" "data nope"  -- data nope
expect_error "unknown flag"         "--stpes"    -- pretrain --data "$WORK" --out "$WORK/r" --stpes 3
expect_error "non-integer --steps"  "--steps"    -- pretrain --data "$WORK" --out "$WORK/r" --steps ten
expect_error "missing --data"       "--data"     -- pretrain --out "$WORK/r"
expect_error "missing value"        "--out"      -- pretrain --data "$WORK" --out
expect_error "no shards"            "train.bin"  -- pretrain --data "$WORK/none" --out "$WORK/r" --steps 2
expect_error "resume, no run"       "no checkpoint" -- pretrain --data "$WORK" --out "$WORK/none" --resume
expect_error "plot, no run"         "$WORK/none" -- plot "$WORK/none"
expect_error "synth, bad size"      "--size-mb"  -- data synth --out "$WORK/s" --size-mb lots
[ -e "$WORK/r" ] && fail "a failed pretrain left $WORK/r behind"
# ---- bench train: full vs LoRA report method, trainable_params and peak_mem_bytes -----------
expect_error "bench, unknown method" "prefix"      -- bench train --config tiny --method prefix
expect_error "bench, lora flag alone" "--lora-r"   -- bench train --config tiny --lora-r 4
expect_error "bench, lora r 0"        "r = 0"      -- bench train --config tiny --method lora --lora-r 0
for m in full lora; do
  expect_ok "bench train --method $m" -- bench train --config tiny --steps 1 --batch 1 --seq 16 --method $m --json
  grep -q "\"method\":\"$m\"" "$WORK/out" || fail "bench train --method $m: JSON lacks method $m"
  grep -q '"peak_mem_bytes":[1-9]' "$WORK/out" || fail "bench train --method $m: JSON lacks a peak_mem_bytes"
  grep -o '"trainable_params":[0-9]*' "$WORK/out" | cut -d: -f2 >"$WORK/trainable_$m"
done
[ "$(cat "$WORK/trainable_lora")" -lt "$(cat "$WORK/trainable_full")" ] ||
  fail "bench train: LoRA should train fewer parameters than full ($(cat "$WORK/trainable_lora") vs $(cat "$WORK/trainable_full"))"
# ---- bench allreduce without a launcher: one rank, nothing moves, still a report (issue 14;
# tests/dist/run_mpi_tests.sh runs it on 2 ranks) -------------------------------------------
expect_ok "bench allreduce, one rank" -- bench allreduce --sizes tiny 1000 4KiB --reps 2 --json
grep -qF '"transport": "single", "ranks": 1' "$WORK/out" || fail "bench allreduce without mpirun should run one rank"
grep -qF '"size": "4KiB", "elements": 1024, "bytes": 4096' "$WORK/out" || fail "bench allreduce: 4KiB is 1024 fp32"
expect_error "bench allreduce, bad size" "'lots'" -- bench allreduce --sizes lots
# ---- bench gemm: FMA peak and LoRA shapes in the JSON (no figure is checked: timing stays out)
expect_error "bench gemm, bad --shapes" "--shapes 'lorra'" -- bench gemm --shapes lorra
expect_ok "bench gemm --shapes lora" -- bench gemm --json --reps 1 --threads 1 --shapes lora --min-time 0.001
[ "$(grep -c . "$WORK/out")" -eq 18 ] || fail "bench gemm --shapes lora: expected 18 JSON lines (6 per r)"
grep -v '^{"op":"sgemm","group":"lora",.*}$' "$WORK/out" && fail "bench gemm --shapes lora: a line is not a LoRA JSON object"
grep -v '"isa":"\(avx512\|avx2\|scalar\)"' "$WORK/out" && fail "bench gemm: a line lacks isa"
grep -v '"peak_gflops":[1-9][0-9]*\.[0-9]' "$WORK/out" && fail "bench gemm: a line lacks a positive peak_gflops"
grep -v '"ours_pct_peak":[0-9]' "$WORK/out" && fail "bench gemm: a line lacks ours_pct_peak"
for r in 8 16 64; do
  for op in down up dU dX dA dB; do
    grep -q "\"name\":\"lora r$r $op\",\"r\":$r," "$WORK/out" || fail "bench gemm: no row 'lora r$r $op'"
  done
done
grep -q "\"M\":8,\"K\":1024,\"N\":768" "$WORK/out" || fail "bench gemm: dA for r 8 should be (M 8, K 1024, N 768)"
if command -v python3 >/dev/null; then
  python3 -c 'import json, sys; [json.loads(line) for line in sys.stdin]' <"$WORK/out" ||
    fail "bench gemm --json: a line is not well-formed JSON"
fi


# ---- the pipeline --------------------------------------------------------------------------
expect_ok "data synth" -- data synth --out "$WORK/synth" --size-mb 0.2 --seed 7
expect_file "$WORK/synth/train.txt"
expect_ok "tokenizer train" -- tokenizer train --input "$WORK/synth/train.txt" --vocab-size 300 --out "$WORK/tok"
expect_file "$WORK/tok/tokenizer.json"
expect_ok "prepare" -- prepare --tokenizer "$WORK/tok" --input "$WORK/synth/train.txt" --out "$WORK/data"
for f in train.bin val.bin meta.json; do expect_file "$WORK/data/$f"; done
cat >"$WORK/tiny.json" <<'JSON'
{"model_type": "gpt2", "vocab_size": 320, "n_positions": 64, "n_embd": 32, "n_layer": 2, "n_head": 4}
JSON
expect_ok "pretrain" -- pretrain --config "$WORK/tiny.json" --data "$WORK/data" --out "$WORK/run" \
  --steps 3 --batch 2 --seq 32 --eval-batches 1 --threads 2 --quiet
for f in metrics.jsonl latest ckpt-3/config.json ckpt-3/model.safetensors ckpt-3/tokenizer.json \
         ckpt-3/optimizer.safetensors ckpt-3/trainer_state.json; do
  expect_file "$WORK/run/$f"
done
[ "$(wc -l <"$WORK/run/metrics.jsonl")" -eq 3 ] || fail "metrics.jsonl should hold 3 lines"
[ "$(cat "$WORK/run/latest")" = "ckpt-3" ] || fail "latest should name ckpt-3"
expect_error "pretrain into a run" "already holds a run" -- pretrain --config "$WORK/tiny.json" \
  --data "$WORK/data" --out "$WORK/run" --steps 3 --batch 2 --seq 32 --quiet
expect_error "seq over context" "--seq 65" -- pretrain --config "$WORK/tiny.json" --data "$WORK/data" \
  --out "$WORK/run2" --steps 3 --batch 2 --seq 65 --quiet
expect_error "unknown preset" "config 'huge'" -- pretrain --config huge --data "$WORK/data" --out "$WORK/run3" --quiet
# ---- tokenizer, generate and score on the pipeline's outputs --------------------------------
echo "Once upon a time" | "$SLLM" tokenizer encode --tokenizer "$WORK/tok" >"$WORK/ids.json" 2>"$WORK/err" ||
  fail "tokenizer encode: exit status $?"
grep -q '^\[[0-9, ]*\]$' "$WORK/ids.json" || fail "tokenizer encode should print one JSON array"
[ "$("$SLLM" tokenizer decode --tokenizer "$WORK/tok" <"$WORK/ids.json")" = "Once upon a time" ] ||
  fail "tokenizer decode(encode(x)) != x"
expect_ok "tokenizer info" -- tokenizer info --tokenizer "$WORK/tok"
expect_error "tokenizer verb"     "nope"          -- tokenizer nope
expect_error "tokenizer pattern"  "gpt5"          -- tokenizer train --input "$WORK/synth/train.txt" --vocab-size 300 --pattern gpt5 --out "$WORK/t2"
expect_error "tokenizer vocab"    "--vocab-size"  -- tokenizer train --input "$WORK/synth/train.txt" --vocab-size many --out "$WORK/t2"
expect_error "tokenizer path"     "$WORK/none"    -- tokenizer info --tokenizer "$WORK/none"
printf 'not json' >"$WORK/bad_ids"
"$SLLM" tokenizer decode --tokenizer "$WORK/tok" <"$WORK/bad_ids" >/dev/null 2>"$WORK/err"; rc=$?
[ "$rc" -eq 1 ] && grep -q HINT "$WORK/err" || fail "tokenizer decode of non-JSON: exit status $rc"
[ -e "$WORK/t2" ] && fail "a failed tokenizer train left $WORK/t2 behind"
expect_ok "generate" -- generate --model "$WORK/run" --prompt "Once upon" --max-new-tokens 5 --seed 1 --threads 1
grep -q "^Once upon" "$WORK/out" || fail "generate should print the prompt first"
expect_ok "score" -- score --model "$WORK/run" --text "Once upon a time" --threads 1
grep -q '"loss"' "$WORK/out" && grep -q '"logprobs"' "$WORK/out" || fail "score should print loss and logprobs"
expect_error "score, bad ids"     "--ids"         -- score --model "$WORK/run" --ids 1,x,3
expect_error "generate, no model" "$WORK/none"    -- generate --model "$WORK/none" --prompt hi

# ---- sft: fine-tune the pretrained run on a tiny JSONL ----------------------------------------
for i in 1 2 3 4 5; do
  echo "{\"messages\": [{\"role\": \"user\", \"content\": \"Who is $i?\"}, {\"role\": \"assistant\", \"content\": \"It is $i.\"}]}"
  echo "{\"prompt\": \"Count $i\", \"completion\": \" $((i + 1))\"}"
done >"$WORK/sft.jsonl"
SFT_FLAGS=(--model "$WORK/run" --data "$WORK/sft.jsonl" --batch 2 --seq 48 --save-every 2 --threads 2 --quiet)
expect_ok "sft --help" -- sft --help
grep -qF -- "--epochs" "$WORK/out" || fail "sft --help should list --epochs on stdout"
# 10 examples, 1 held out: 9 train; --epochs 2 with batch 2 -> ceil(2 * 9 / 2) = 9 steps.
expect_ok "sft, stopped" -- sft "${SFT_FLAGS[@]}" --out "$WORK/sft" --epochs 2 --stop-at 4
grep -qF "examples 10, truncated 0, dropped 0" "$WORK/err" || fail "sft should print the data summary"
grep -qF "9 steps" "$WORK/err" || fail "sft --epochs 2 should give 9 steps"
for f in metrics.jsonl latest ckpt-2/model.safetensors ckpt-4/config.json ckpt-4/model.safetensors \
         ckpt-4/tokenizer.json ckpt-4/optimizer.safetensors ckpt-4/trainer_state.json; do
  expect_file "$WORK/sft/$f"
done
[ "$(cat "$WORK/sft/latest")" = "ckpt-4" ] || fail "sft latest should name ckpt-4"
grep -q '"label_tokens"' "$WORK/sft/metrics.jsonl" || fail "sft metrics should hold label_tokens"
expect_ok "sft, resumed" -- sft "${SFT_FLAGS[@]}" --out "$WORK/sft" --epochs 2 --resume
expect_ok "sft, straight" -- sft "${SFT_FLAGS[@]}" --out "$WORK/sft2" --epochs 2
[ "$(wc -l <"$WORK/sft/metrics.jsonl")" -eq 9 ] || fail "sft metrics.jsonl should hold 9 lines"
[ "$(cat "$WORK/sft/latest")" = "ckpt-9" ] || fail "resumed sft latest should name ckpt-9"
# Timing and the process's peak memory differ between a resumed and a straight run.
no_speed() { sed -e 's/,"tokens_per_s":[^,}]*//' -e 's/"peak_mem_bytes":[0-9]*,//' "$1"; }
[ "$(no_speed "$WORK/sft/metrics.jsonl")" = "$(no_speed "$WORK/sft2/metrics.jsonl")" ] ||
  fail "resumed sft metrics differ from the straight run's"
cmp -s "$WORK/sft/ckpt-9/model.safetensors" "$WORK/sft2/ckpt-9/model.safetensors" ||
  fail "resumed sft weights differ from the straight run's"
expect_ok "generate on sft" -- generate --model "$WORK/sft" --prompt "Who" --max-new-tokens 3 --seed 1 --threads 1
printf '%s\n' '{"prompt": "a", "completion": "b"}' '{"messages": [{"role": "user", "content": "hi"}' >"$WORK/bad.jsonl"
expect_error "sft, bad jsonl"    "bad.jsonl:2"   -- sft "${SFT_FLAGS[@]}" --data "$WORK/bad.jsonl" --out "$WORK/sftx"
printf '%s\n' '{"messages": [{"role": "user", "content": "hi"}]}' >"$WORK/noasst.jsonl"
expect_error "sft, no assistant" "noasst.jsonl:1" -- sft "${SFT_FLAGS[@]}" --data "$WORK/noasst.jsonl" --out "$WORK/sftx"
expect_error "sft, no model"     "$WORK/none"    -- sft --model "$WORK/none" --data "$WORK/sft.jsonl" --out "$WORK/sftx"
expect_error "sft, no data"      "nope.jsonl"    -- sft "${SFT_FLAGS[@]}" --data "$WORK/nope.jsonl" --out "$WORK/sftx"
expect_error "sft, epochs+steps" "--epochs"      -- sft "${SFT_FLAGS[@]}" --out "$WORK/sftx" --epochs 1 --steps 2
expect_error "sft, method"       "--method"      -- sft "${SFT_FLAGS[@]}" --out "$WORK/sftx" --method prefix
expect_error "sft, overlong"     "--truncate"    -- sft "${SFT_FLAGS[@]}" --out "$WORK/sftx" --seq 8
expect_error "sft, seq > ctx"    "--seq 100"     -- sft "${SFT_FLAGS[@]}" --out "$WORK/sftx" --seq 100
expect_error "sft, into a run"   "already holds a run" -- sft "${SFT_FLAGS[@]}" --out "$WORK/sft2" --epochs 2
expect_error "sft, resume done"  "already reached" -- sft "${SFT_FLAGS[@]}" --out "$WORK/sft2" --resume
# LoRA: checkpoints hold only the adapter (PEFT files); resume continues bit-exactly.
LORA_FLAGS=(--method lora --lora-r 4 --lora-alpha 8 --lora-dropout 0.1 --lora-targets c_attn --lr 1e-2 --epochs 2)
expect_ok "sft lora, stopped" -- sft "${SFT_FLAGS[@]}" "${LORA_FLAGS[@]}" --out "$WORK/lora" --stop-at 4
grep -qF "method lora" "$WORK/err" || fail "sft lora should report its method and trainable parameters"
for f in adapter_config.json adapter_model.safetensors optimizer.safetensors trainer_state.json tokenizer.json; do
  expect_file "$WORK/lora/ckpt-4/$f"
done
[ -e "$WORK/lora/ckpt-4/model.safetensors" ] && fail "a LoRA checkpoint should not hold the base weights"
grep -qF '"peft_type": "LORA"' "$WORK/lora/ckpt-4/adapter_config.json" || fail "adapter_config.json lacks peft_type LORA"
expect_ok "sft lora, resumed" -- sft "${SFT_FLAGS[@]}" "${LORA_FLAGS[@]}" --out "$WORK/lora" --resume
expect_ok "sft lora, straight" -- sft "${SFT_FLAGS[@]}" "${LORA_FLAGS[@]}" --out "$WORK/lora2"
[ "$(no_speed "$WORK/lora/metrics.jsonl")" = "$(no_speed "$WORK/lora2/metrics.jsonl")" ] ||
  fail "resumed LoRA metrics differ from the straight run's"
cmp -s "$WORK/lora/ckpt-9/adapter_model.safetensors" "$WORK/lora2/ckpt-9/adapter_model.safetensors" ||
  fail "resumed LoRA adapter differs from the straight run's"
expect_error "sft lora, r = 0"   "r = 0"         -- sft "${SFT_FLAGS[@]}" --out "$WORK/sftx" --method lora --lora-r 0
expect_error "sft lora, target"  "c_attn"        -- sft "${SFT_FLAGS[@]}" --out "$WORK/sftx" --method lora --lora-targets q_proj
expect_error "sft, lora flag"    "--lora-r"      -- sft "${SFT_FLAGS[@]}" --out "$WORK/sftx" --lora-r 4
[ -e "$WORK/sftx" ] && fail "a failed sft left $WORK/sftx behind"

# ---- sllm memory: the predicted breakdown, its errors, and prediction vs a real run's peak ----
expect_ok "memory" -- memory --config small --batch 8 --seq 128
for w in weights gradients "optimizer state" activations "runtime baseline" "total (peak RSS)"; do
  grep -qF "$w" "$WORK/out" || fail "sllm memory's table lacks '$w'"
done
expect_ok "memory --json, lora on a run" -- memory --config "$WORK/run" --method lora --lora-r 4 --lora-targets c_attn --json
grep -qF '"lora_modules":["c_attn"]' "$WORK/out" || fail "sllm memory --json should name the LoRA modules"
expect_error "memory, method"  "--method"             -- memory --config tiny --method prefix
expect_error "memory, r = 0"   "rank 0"               -- memory --config tiny --method lora --lora-r 0
expect_error "memory, target"  "c_attn, c_proj, c_fc" -- memory --config tiny --method lora --lora-targets q_proj
expect_error "memory, batch"   "--batch"              -- memory --config tiny --batch 0
expect_error "memory, config"  "neither a preset"     -- memory --config "$WORK/none"
expect_error "memory, bf16"    "--device cuda"        -- memory --config tiny --precision bf16
# The issue's bar: sllm memory's total within 15% of the peak_mem_bytes a real run logs.
json_int() { grep -o "\"$1\":[0-9]*" "$2" | tail -1 | cut -d: -f2; }
within_15() {
  awk -v p="$2" -v m="$3" 'BEGIN { d = p - m; if (d < 0) d = -d; exit !(m > 0 && d <= 0.15 * m) }' ||
    fail "$1: predicted $2 bytes, the run's peak_mem_bytes $3 (more than 15% apart)"
}
# Not the tiny preset (0.2 MiB of weights, 2.6 MiB of live tensors at batch 4 x 64): there
# the runtime's and host allocator's own few MiB are most of the RSS (measured 13.2 MiB
# against 8.8 predicted on an AVX2 box), so the check would test malloc, not the model.
for spec in "small 8 128"; do
  read -r preset batch seq <<<"$spec"
  expect_ok "pretrain $preset, memory" -- pretrain --config "$preset" --data "$WORK/data" --out "$WORK/mem-$preset" \
    --steps 2 --batch "$batch" --seq "$seq" --eval-batches 1 --threads 2 --quiet
  "$SLLM" memory --config "$preset" --batch "$batch" --seq "$seq" --json >"$WORK/mem.json"
  within_15 "pretrain $preset" "$(json_int total_bytes "$WORK/mem.json")" "$(json_int peak_mem_bytes "$WORK/mem-$preset/metrics.jsonl")"
done
# LoRA and QLoRA (quantized on load: the run's peak is training's, after the quantization)
# on the small preset pretrained above; QLoRA also with checkpointed blocks.
for spec in "lora" "qlora" "qlora --grad-checkpoint"; do
  read -r method ckpt <<<"$spec"
  MEM_LORA=(--method "$method" --lora-r 4 --lora-targets c_attn --batch 4 --seq 48 $ckpt)
  expect_ok "sft $spec, memory" -- sft --model "$WORK/mem-small/ckpt-2" --data "$WORK/sft.jsonl" "${MEM_LORA[@]}" \
    --steps 2 --threads 2 --quiet --out "$WORK/mem-$method$ckpt"
  "$SLLM" memory --config "$WORK/mem-small/ckpt-2" "${MEM_LORA[@]}" --threads 2 --json >"$WORK/mem.json"
  within_15 "sft $spec" "$(json_int total_bytes "$WORK/mem.json")" "$(json_int peak_mem_bytes "$WORK/mem-$method$ckpt/metrics.jsonl")"
done

expect_ok "plot" -- plot "$WORK/run"
expect_file "$WORK/run/loss.svg"
grep -q "<svg" "$WORK/run/loss.svg" || fail "loss.svg is not an SVG"

# ---- LoRA at inference: --adapter on generate/score/chat, sllm merge --------------------------
# $WORK/lora is the LoRA sft run above (a c_attn adapter on $WORK/run's latest checkpoint).
loss_of() { sed -n 's/^{"loss":\([^,]*\),.*/\1/p' "$1"; }
QA="Who is 3? It is 3."
expect_ok "score, base" -- score --model "$WORK/run" --text "$QA" --threads 1
base_loss=$(loss_of "$WORK/out")
expect_ok "score --adapter" -- score --model "$WORK/run" --adapter "$WORK/lora" --text "$QA" --threads 1
adapter_loss=$(loss_of "$WORK/out")
[ -n "$base_loss" ] && [ "$base_loss" != "$adapter_loss" ] || fail "score --adapter should change the loss ($base_loss vs $adapter_loss)"
expect_ok "score --adapter, base from the adapter" -- score --adapter "$WORK/lora/ckpt-9" --text "$QA" --threads 1
[ "$(loss_of "$WORK/out")" = "$adapter_loss" ] || fail "score --adapter without --model should use base_model_name_or_path"
GEN=(--prompt "Who is" --max-new-tokens 20 --temperature 0 --threads 1)
expect_ok "generate, base" -- generate --model "$WORK/run" "${GEN[@]}"
cp "$WORK/out" "$WORK/gen_base"
expect_ok "generate --adapter" -- generate --model "$WORK/run" --adapter "$WORK/lora" "${GEN[@]}"
cp "$WORK/out" "$WORK/gen_adapter"
grep -q "^Who is" "$WORK/gen_adapter" || fail "generate --adapter should print the prompt first"
cmp -s "$WORK/gen_base" "$WORK/gen_adapter" && fail "generate --adapter should differ from the base model's text"
expect_ok "merge" -- merge --model "$WORK/run" --adapter "$WORK/lora" --out "$WORK/merged" --threads 1
for f in config.json model.safetensors tokenizer.json; do expect_file "$WORK/merged/$f"; done
[ -e "$WORK/merged/adapter_config.json" ] && fail "a merged model should hold no adapter files"
expect_ok "score, merged" -- score --model "$WORK/merged" --text "$QA" --threads 1
awk -v a="$(loss_of "$WORK/out")" -v b="$adapter_loss" 'BEGIN { d = a - b; exit !(a != "" && d < 1e-4 && d > -1e-4) }' ||
  fail "the merged model's loss $(loss_of "$WORK/out") should equal the adapter's $adapter_loss"
expect_ok "generate, merged" -- generate --model "$WORK/merged" "${GEN[@]}"
cmp -s "$WORK/out" "$WORK/gen_adapter" || fail "greedy text of the merged model should equal the adapter model's"
CHAT=(--model "$WORK/run" --adapter "$WORK/lora" --max-new-tokens 8 --temperature 0 --threads 1)
expect_ok "chat --prompt" -- chat "${CHAT[@]}" --prompt "Who is 1?"
cp "$WORK/out" "$WORK/chat_one"
expect_file "$WORK/chat_one"
"$SLLM" chat "${CHAT[@]}" >"$WORK/out" 2>"$WORK/err" < <(printf 'Who is 1?\n/exit\nWho is 2?\n'); rc=$?
[ "$rc" -eq 0 ] || fail "chat on piped input: exit status $rc"
cmp -s "$WORK/out" "$WORK/chat_one" || fail "chat's first piped turn should equal chat --prompt, and /exit should quit"
"$SLLM" chat "${CHAT[@]}" >"$WORK/out" 2>"$WORK/err" < <(printf 'Who is 1?\n/reset\nWho is 1?\n'); rc=$?
[ "$rc" -eq 0 ] || fail "chat with /reset: exit status $rc"
cmp -s "$WORK/out" <(cat "$WORK/chat_one" "$WORK/chat_one") || fail "after /reset the same message should get the same greedy reply"
"$SLLM" chat "${CHAT[@]}" --system "Be brief." >"$WORK/out" 2>"$WORK/err" < <(printf 'Who is %s?\n' 1 2 3 4); rc=$?
[ "$rc" -eq 0 ] || fail "chat, four piped turns: exit status $rc"
grep -qF "dropped the oldest" "$WORK/err" || fail "chat should say on stderr when it drops old turns (64-token context)"
# Bad input: exit 1 with a hint, and merge leaves no --out behind.
cat >"$WORK/wide.json" <<'JSON'
{"model_type": "gpt2", "vocab_size": 320, "n_positions": 64, "n_embd": 48, "n_layer": 2, "n_head": 4}
JSON
expect_ok "pretrain, wider base" -- pretrain --config "$WORK/wide.json" --data "$WORK/data" --out "$WORK/wide" \
  --steps 1 --batch 2 --seq 32 --eval-batches 1 --threads 2 --quiet
expect_error "merge, another base"   "[4, 32] but this model needs [4, 48]" -- merge --model "$WORK/wide" --adapter "$WORK/lora" --out "$WORK/mergex"
grep -qF "lora_A.weight" "$WORK/err" || fail "an adapter for another base should name the tensor"
expect_error "score, another base"   "lora_A.weight" -- score --model "$WORK/wide" --adapter "$WORK/lora" --text "$QA"
expect_error "chat, another base"    "lora_A.weight" -- chat --model "$WORK/wide" --adapter "$WORK/lora" --prompt hi
expect_error "generate, no adapter"  "$WORK/none"    -- generate --model "$WORK/run" --adapter "$WORK/none" --prompt hi
expect_error "generate, model as adapter" "as --model" -- generate --model "$WORK/run" --adapter "$WORK/sft" --prompt hi
expect_error "chat, adapter as model" "--adapter"    -- chat --model "$WORK/lora" --prompt hi
expect_error "chat, template"        "chatml"        -- chat "${CHAT[@]}" --template chatlm --prompt hi
expect_error "chat, system + none"   "--system"      -- chat "${CHAT[@]}" --template none --system "Be brief." --prompt hi
expect_error "merge, no adapter"     "$WORK/none"    -- merge --model "$WORK/run" --adapter "$WORK/none" --out "$WORK/mergex"
cp "$WORK/merged/model.safetensors" "$WORK/merged_copy"
expect_error "merge, existing out"   "already exists" -- merge --model "$WORK/run" --adapter "$WORK/lora" --out "$WORK/merged"
cmp -s "$WORK/merged/model.safetensors" "$WORK/merged_copy" || fail "a refused merge changed the existing --out"
[ -e "$WORK/mergex" ] && fail "a failed merge left $WORK/mergex behind"
ls "$WORK" | grep -q '\.tmp\.' && fail "a failed merge left a temporary directory in $WORK"

# ---- data story-qa and eval: the instruction set and held-out exact match ------------------
expect_ok "data story-qa" -- data story-qa --out "$WORK/qa" --train 20 --val 2 --test 5 --seed 3
for f in train.jsonl val.jsonl test.jsonl README; do expect_file "$WORK/qa/$f"; done
[ "$(wc -l <"$WORK/qa/test.jsonl")" -eq 5 ] || fail "story-qa --test 5 should write 5 lines"
cp -r "$WORK/qa" "$WORK/qa_first"
expect_ok "data story-qa, again" -- data story-qa --out "$WORK/qa" --train 20 --val 2 --test 5 --seed 3
diff -r "$WORK/qa" "$WORK/qa_first" >/dev/null || fail "story-qa with the same seed should write the same files"
expect_error "data story-qa, sizes" "--train" -- data story-qa --out "$WORK/qax" --train 0
[ -e "$WORK/qax" ] && fail "a failed story-qa left $WORK/qax behind"
# $WORK/run's context is 64 tokens: short questions.
printf '%s\n' '{"prompt": "Who is 3?", "completion": "3"}' '{"prompt": "Who is 4?", "completion": "4", "type": "who"}' \
  '{"messages": [{"role": "user", "content": "Count 5"}, {"role": "assistant", "content": "6"}]}' >"$WORK/qa.jsonl"
EVAL=(--model "$WORK/run" --data "$WORK/qa.jsonl" --threads 1)
expect_ok "eval, zero-shot" -- eval "${EVAL[@]}" --format plain
grep -q "exact match: .* (.* / 3)" "$WORK/out" || fail "eval should print the exact match over 3 questions"
expect_ok "eval, few-shot json" -- eval "${EVAL[@]}" --format plain --shots 2 --shots-from "$WORK/qa.jsonl" --json --out "$WORK/eval.json"
grep -q '"count": 3' "$WORK/eval.json" && grep -q '"shots": 2' "$WORK/eval.json" || fail "eval --out should hold count and shots"
cmp -s "$WORK/out" "$WORK/eval.json" || fail "eval --json and --out should print the same report"
expect_ok "eval --adapter" -- eval "${EVAL[@]}" --adapter "$WORK/lora" --limit 2
grep -q "(.* / 2)" "$WORK/out" || fail "eval --limit 2 should score 2 questions"
expect_error "eval, no data"      "nope.jsonl"     -- eval --model "$WORK/run" --data "$WORK/nope.jsonl"
expect_error "eval, no model"     "$WORK/none"     -- eval --model "$WORK/none" --data "$WORK/qa.jsonl"
expect_error "eval, shots > pool" "holds only 3"   -- eval "${EVAL[@]}" --shots 4 --shots-from "$WORK/qa.jsonl"
expect_error "eval, no shot file" "--shots-from"   -- eval "${EVAL[@]}" --shots 2
expect_error "eval, format"       "--format plain" -- eval "${EVAL[@]}" --format json
expect_error "eval, bad jsonl"    "bad.jsonl:2"    -- eval --model "$WORK/run" --data "$WORK/bad.jsonl"
expect_error "eval, model as adapter" "neither an adapter" -- eval "${EVAL[@]}" --adapter "$WORK/sft"
expect_error "eval, context"      "fewer --shots"  -- eval "${EVAL[@]}" --format plain --shots 10 --shots-from "$WORK/sft.jsonl"
expect_error "eval, max tokens"   "--max-new-tokens" -- eval "${EVAL[@]}" --max-new-tokens 0

# ---- data rlhf-story and verify (issue 11): verifiable prompts, pairs and a pass rate --------
expect_ok "data rlhf-story" -- data rlhf-story --out "$WORK/rlhf" --train 20 --val 4 --test 6 --seed 3
for f in prompts.train.jsonl prompts.test.jsonl pairs.train.jsonl pairs.val.jsonl README; do expect_file "$WORK/rlhf/$f"; done
[ "$(wc -l <"$WORK/rlhf/pairs.val.jsonl")" -eq 4 ] || fail "rlhf-story --val 4 should write 4 pairs"
cp -r "$WORK/rlhf" "$WORK/rlhf_first"
expect_ok "data rlhf-story, again" -- data rlhf-story --out "$WORK/rlhf" --train 20 --val 4 --test 6 --seed 3
diff -r "$WORK/rlhf" "$WORK/rlhf_first" >/dev/null || fail "rlhf-story with the same seed should write the same files"
expect_error "data rlhf-story, sizes" "--test" -- data rlhf-story --out "$WORK/rlhfx" --test 0
[ -e "$WORK/rlhfx" ] && fail "a failed rlhf-story left $WORK/rlhfx behind"
# $WORK/run's context is 64 tokens: short prompts (the rlhf-story ones need the demo tokenizer).
printf '%s\n' '{"prompt": "Once upon a time", "name": "Lily", "verifier": "mentions-name"}' \
  '{"prompt": "One day,", "word": "the", "verifier": "uses-word"}' >"$WORK/verify.jsonl"
VERIFY=(--model "$WORK/run" --prompts "$WORK/verify.jsonl" --samples 3 --max-new-tokens 8 --threads 1)
expect_ok "verify" -- verify "${VERIFY[@]}" --out "$WORK/verify.json"
for k in pass_rate mean_reward prompts samples examples; do grep -q "\"$k\":" "$WORK/verify.json" || fail "verify report lacks \"$k\""; done
grep -q '"responses": 6' "$WORK/verify.json" || fail "verify: 2 prompts x --samples 3 should grade 6 responses"
grep -q "pass rate .* / 6 responses" "$WORK/out" || fail "verify should print the pass rate over 6 responses"
expect_ok "verify, same seed" -- verify "${VERIFY[@]}" --out "$WORK/verify2.json"
diff <(grep -v '"seconds"' "$WORK/verify.json") <(grep -v '"seconds"' "$WORK/verify2.json") >/dev/null ||
  fail "verify with the same seed should grade the same responses"
expect_error "verify, unknown verifier" "known verifiers: mentions-name" -- verify "${VERIFY[@]}" --verifier mention-name --out "$WORK/vx.json"
expect_error "verify, missing field" "verify.jsonl:1: sentence-count" -- verify "${VERIFY[@]}" --verifier sentence-count --out "$WORK/vx.json"
printf '%s\n' '{"prompt": "a", "word": "b"}' >"$WORK/noverifier.jsonl"
expect_error "verify, no verifier" "--verifier" -- verify --model "$WORK/run" --prompts "$WORK/noverifier.jsonl" --out "$WORK/vx.json"
printf '%s\n' '{"prompt": "a", "word": "b", "verifier": "uses-word"}' '{"prompt": "", "word": "b", "verifier": "uses-word"}' >"$WORK/emptyprompt.jsonl"
expect_error "verify, empty prompt" "emptyprompt.jsonl:2" -- verify --model "$WORK/run" --prompts "$WORK/emptyprompt.jsonl" --out "$WORK/vx.json"
[ -e "$WORK/vx.json" ] && fail "a failed verify wrote a report"

# ---- a .gguf file wherever a model is taken; sllm convert (issue 12) ------------------------
GGUF="$(cd "$(dirname "$0")/../.." && pwd)/tests/golden/gguf/tiny_llama.gguf"
expect_ok "generate --model FILE.gguf" -- generate --model "$GGUF" --prompt "the cat" --max-new-tokens 4 --temperature 0 --threads 1
cp "$WORK/out" "$WORK/gen_gguf"
expect_ok "score --model FILE.gguf" -- score --model "$GGUF" --text "the cat sat on the mat" --threads 1
cp "$WORK/out" "$WORK/score_gguf"
expect_ok "memory --config FILE.gguf" -- memory --config "$GGUF" --method lora --batch 1 --seq 16
grep -q "llama 2x64" "$WORK/out" || fail "memory --config FILE.gguf should describe the 2-layer Llama"
printf 'the cat' | "$SLLM" tokenizer encode --tokenizer "$GGUF" >"$WORK/out" 2>"$WORK/err" || fail "tokenizer encode --tokenizer FILE.gguf"
grep -qF "[276,278]" "$WORK/out" || fail "tokenizer encode --tokenizer FILE.gguf: expected transformers' [276,278], got $(cat "$WORK/out")"
expect_ok "sft --model FILE.gguf" -- sft --model "$GGUF" --data "$WORK/sft.jsonl" --batch 2 --seq 48 --steps 2 --threads 1 --quiet --out "$WORK/sft_gguf"
expect_ok "convert" -- convert "$GGUF" --out "$WORK/conv" --threads 1
for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do expect_file "$WORK/conv/$f"; done
grep -q '"chat_template"' "$WORK/conv/tokenizer_config.json" || fail "convert: tokenizer_config.json lacks the chat template"
expect_ok "generate, converted" -- generate --model "$WORK/conv" --prompt "the cat" --max-new-tokens 4 --temperature 0 --threads 1
cmp -s "$WORK/out" "$WORK/gen_gguf" || fail "convert: the directory should generate what the .gguf does"
expect_ok "score, converted" -- score --model "$WORK/conv" --text "the cat sat on the mat" --threads 1
cmp -s "$WORK/out" "$WORK/score_gguf" || fail "convert: the directory should score what the .gguf does"
expect_error "convert, no file"     "no GGUF file"        -- convert --out "$WORK/conv2"
expect_error "convert, not gguf"    "is not a .gguf file" -- convert "$WORK/sft.jsonl" --out "$WORK/conv2"
expect_error "convert, out exists"  "already exists"      -- convert "$GGUF" --out "$WORK/conv"
head -c 5000 "$GGUF" >"$WORK/cut.gguf"
expect_error "convert, truncated"   "cut.gguf"            -- convert "$WORK/cut.gguf" --out "$WORK/conv2"
[ -e "$WORK/conv2" ] && fail "a failed convert left $WORK/conv2 behind"

# ---- sllm quantize: 4-bit directories in bitsandbytes' layout (issue 10) ----------------------
# $WORK/run is the tiny GPT-2 pretrained above; $WORK/mem-small/ckpt-2 the `small` preset.
expect_ok "quantize" -- quantize --model "$WORK/run" --out "$WORK/q4" --threads 1
for f in config.json model.safetensors tokenizer.json; do expect_file "$WORK/q4/$f"; done
grep -qF '"quant_method": "bitsandbytes"' "$WORK/q4/config.json" || fail "quantize: config.json lacks quantization_config"
grep -q "^bits per parameter: 4\.1" "$WORK/out" || fail "quantize should print its bits per parameter, got: $(cat "$WORK/out")"
expect_ok "quantize, small preset" -- quantize --model "$WORK/mem-small/ckpt-2" --out "$WORK/q4small" --threads 2
bits=$(sed -n 's/^bits per parameter: \([0-9.]*\) .*/\1/p' "$WORK/out")
awk -v b="$bits" 'BEGIN { exit !(b != "" && b <= 4.13) }' || fail "NF4+DQ at blocksize 64 should be <= 4.13 bits per parameter, got '$bits'"
expect_ok "score, quantized" -- score --model "$WORK/q4" --text "$QA" --threads 1
q_loss=$(loss_of "$WORK/out")
awk -v a="$q_loss" -v b="$base_loss" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && a != b && d < 0.05 * b) }' ||
  fail "the NF4 model's loss $q_loss should be near (not equal to) the f32 model's $base_loss"
expect_ok "generate, quantized" -- generate --model "$WORK/q4" "${GEN[@]}"
grep -q "^Who is" "$WORK/out" || fail "generate on a quantized model should print the prompt first"
expect_ok "chat, quantized" -- chat --model "$WORK/q4" --prompt "Who is 1?" --max-new-tokens 4 --temperature 0 --threads 1
expect_ok "sft qlora, quantized dir" -- sft --model "$WORK/q4" --data "$WORK/sft.jsonl" --batch 2 --seq 48 --steps 2 \
  --threads 2 --quiet --method qlora --lora-r 4 --lora-targets c_attn --out "$WORK/q4sft"
grep -qF "already quantized" "$WORK/err" || fail "sft --method qlora on a 4-bit directory should say the base is already quantized"
# A weight smaller than the block (c_attn: 3072 < 4096) is one short block, as in bitsandbytes.
expect_ok "quantize, fp4, short blocks" -- quantize --model "$WORK/run" --out "$WORK/q4fp4" --fp4 --no-double-quant --blocksize 4096
expect_ok "score, fp4" -- score --model "$WORK/q4fp4" --text "$QA" --threads 1
# Bad input: exit 1 with a hint, nothing left in --out.
expect_error "quantize, blocksize 48"   "power of two"      -- quantize --model "$WORK/run" --out "$WORK/q4x" --blocksize 48
expect_error "quantize, blocksize 8192" "power of two"      -- quantize --model "$WORK/run" --out "$WORK/q4x" --blocksize 8192
expect_error "quantize, two types"      "--fp4"             -- quantize --model "$WORK/run" --out "$WORK/q4x" --nf4 --fp4
expect_error "quantize, quantized"      "already quantized" -- quantize --model "$WORK/q4" --out "$WORK/q4x"
expect_error "quantize, no model"       "$WORK/none"        -- quantize --model "$WORK/none" --out "$WORK/q4x"
cp "$WORK/q4/model.safetensors" "$WORK/q4_copy"
expect_error "quantize, out exists"     "already exists"    -- quantize --model "$WORK/run" --out "$WORK/q4"
cmp -s "$WORK/q4/model.safetensors" "$WORK/q4_copy" || fail "a refused quantize changed the existing --out"
[ -e "$WORK/q4x" ] && fail "a failed quantize left $WORK/q4x behind"
cp -r "$WORK/q4" "$WORK/q4bad"  # the quant_state JSON inside the file, same length: offsets stay valid
LC_ALL=C sed -i 's/"blocksize": 64/"blocksize": 48/g' "$WORK/q4bad/model.safetensors"
expect_error "score, corrupted quant_state" "blocksize 48"  -- score --model "$WORK/q4bad" --text "$QA"
expect_error "sft lora, quantized"  "needs full-precision"  -- sft --model "$WORK/q4" --data "$WORK/sft.jsonl" --method lora \
  --lora-targets c_attn --batch 2 --seq 48 --steps 1 --out "$WORK/q4x"
expect_error "merge, quantized base" "4-bit"                -- merge --model "$WORK/q4" --adapter "$WORK/lora" --out "$WORK/q4x"
[ -e "$WORK/q4x" ] && fail "a failed sft or merge on a quantized model left $WORK/q4x behind"

# ---- reward train | score (issue 11): a reward model on the SFT tokenizer's run ------------
for i in 1 2 3 4 5 6 7 8; do
  echo "{\"prompt\": \"Who is $i?\", \"chosen\": \"It is $i.\", \"rejected\": \"No.\"}"
done >"$WORK/pairs.jsonl"
echo '{"prompt": "Who?", "chosen": "Same.", "rejected": "Same."}' >>"$WORK/pairs.jsonl"
RM_FLAGS=(--model "$WORK/run" --data "$WORK/pairs.jsonl" --batch 2 --seq 48 --steps 2 --val-count 2 --threads 2 --quiet)
expect_ok "reward train" -- reward train "${RM_FLAGS[@]}" --out "$WORK/rm"
grep -qF "skipped 1 pair(s)" "$WORK/err" || fail "reward train should warn about the pair whose answers are equal"
grep -q '"val_accuracy"' "$WORK/rm/metrics.jsonl" || fail "reward train metrics should hold val_accuracy"
grep -qF "ForSequenceClassification" "$WORK/rm/ckpt-2/config.json" || fail "a reward checkpoint should be a sequence classifier"
expect_ok "reward train lora" -- reward train "${RM_FLAGS[@]}" --method lora --lora-r 2 --out "$WORK/rm-lora"
expect_file "$WORK/rm-lora/ckpt-2/adapter/adapter_model.safetensors"
printf '%s\n' '{"prompt": "Who is 1?", "chosen": "It is 1.", "rejected": "No."}' \
  '{"prompt": "Who is 2?", "completion": "It is 2."}' >"$WORK/to_score.jsonl"
for rm in rm rm-lora; do
  expect_ok "reward score $rm" -- reward score --model "$WORK/$rm" --data "$WORK/to_score.jsonl" --threads 1
  [ "$(grep -c '"chosen":.*"rejected":' "$WORK/out")" -eq 1 ] && [ "$(grep -c '"reward":' "$WORK/out")" -eq 1 ] ||
    fail "reward score ($rm) should print one pair line and one reward line, got: $(cat "$WORK/out")"
done
printf '%s\n' '{"prompt": "a", "chosen": "b", "rejected": "c"}' '{"prompt": "", "chosen": "b", "rejected": "c"}' >"$WORK/noprompt.jsonl"
expect_error "reward, empty prompt" "noprompt.jsonl:2" -- reward train "${RM_FLAGS[@]}" --data "$WORK/noprompt.jsonl" --out "$WORK/rmx"
expect_error "reward, overlong"     "--truncate"       -- reward train "${RM_FLAGS[@]}" --seq 6 --out "$WORK/rmx"
expect_error "reward, method"       "--method"         -- reward train "${RM_FLAGS[@]}" --method qlora --out "$WORK/rmx"
expect_error "reward score, an LM"  "not a reward model" -- reward score --model "$WORK/run" --data "$WORK/to_score.jsonl"
expect_error "reward, no verb"      "reward nope"      -- reward nope
[ -e "$WORK/rmx" ] && fail "a failed reward train left $WORK/rmx behind"

# ---- dpo, ppo, grpo and bench generate (issue 11): flag errors stop before any work ------
# $WORK/run is the tiny pretrained model, $WORK/pairs.jsonl the reward pairs, $WORK/verify.jsonl
# the verifiable prompts above.
DPO=(--model "$WORK/run" --data "$WORK/pairs.jsonl" --out "$WORK/dpox" --threads 1)
expect_error "dpo, loss type"       "--loss-type sigmoid" -- dpo "${DPO[@]}" --loss-type hinge
expect_error "dpo, lora flag, full" "--lora-r"            -- dpo "${DPO[@]}" --method full --lora-r 4
[ -e "$WORK/dpox" ] && fail "a failed dpo left $WORK/dpox behind"
RL=(--model "$WORK/run" --prompts "$WORK/verify.jsonl" --threads 1)
expect_error "ppo, no reward"       "--reward"            -- ppo "${RL[@]}" --out "$WORK/ppox"
expect_error "ppo, unknown verifier" "known verifiers"    -- ppo "${RL[@]}" --out "$WORK/ppox" --reward verifier:nope
[ -e "$WORK/ppox" ] && fail "a failed ppo left $WORK/ppox behind"
expect_error "grpo, one generation" "--num-generations"   -- grpo "${RL[@]}" --out "$WORK/grpox" --reward verifier --num-generations 1
[ -e "$WORK/grpox" ] && fail "a failed grpo left $WORK/grpox behind"
expect_error "bench generate, model and config" "one of them" -- bench generate --model "$WORK/run" --config tiny

if [ "$failures" -ne 0 ]; then
  echo "$failures CLI check(s) failed" >&2
  exit 1
fi
echo "all CLI checks passed"
