#!/usr/bin/env bash
# `make demo-sft`: prompt engineering vs fine-tuning on the story-QA instruction set, starting
# from the pretrained model of `make demo` (runs/demo; trained first when missing):
#   story-QA data (data/story-qa) -> zero-shot and few-shot prompting of the base model
#   -> full fine-tuning, LoRA and QLoRA (sllm sft) -> held-out exact match of all five
#   -> runs/demo-sft/results.md, results.json and accuracy.svg.
# QLoRA (issue 10) is LoRA with the same hyper-parameters over the base quantized on load to
# NF4 with double quantization (blocksize 64, sft's defaults); its adapter is evaluated over
# the same 4-bit base, written once by `sllm quantize` to runs/demo-sft/base-nf4 (the same
# quantize_model, so the same bytes the fine-tune trained over).
# All four rows see the same question text, "Story: ...\nQuestion: ...\nAnswer:" (plain text,
# with solved examples before it in the few-shot row); the fine-tunes train on the same
# examples as prompt/completion (--template none: the answer, then <|endoftext|>). Why not
# ChatML: the demo tokenizer has <|im_start|>/<|im_end|>, but pretraining never saw them, so
# their embeddings are untrained, and LoRA (embeddings frozen) cannot fix that: with ChatML,
# 300 steps left LoRA at val loss 4.8 per answer token against 1.15 for full fine-tuning.
# The script fails unless both fine-tuned rows beat the few-shot row, LoRA comes within
# 5 points of full fine-tuning, and QLoRA within 2 points of LoRA (issue 10's quality bar:
# the QLoRA paper reports 4-bit NF4 matching 16-bit LoRA). Re-runnable: it replaces
# data/story-qa and runs/demo-sft.
# Knobs (environment): SLLM (binary, default build/sllm), DEMO_THREADS (2), SFT_TRAIN (examples,
# 3000), SFT_TEST (300), SFT_SHOTS (3), SFT_STEPS (full fine-tuning steps, 600), LORA_STEPS (1000: a LoRA step costs less),
# SFT_BATCH (16), SFT_SEQ (56), SFT_LR (full, 5e-4), LORA_LR (2e-3), LORA_R (16),
# LORA_TARGETS (all-linear); LORA_STEPS, LORA_LR, LORA_R and LORA_TARGETS apply to QLoRA too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SLLM=${SLLM:-build/sllm}
THREADS=${DEMO_THREADS:-2}
TRAIN=${SFT_TRAIN:-3000}
TEST=${SFT_TEST:-300}
SHOTS=${SFT_SHOTS:-3}
STEPS=${SFT_STEPS:-600}
LORA_STEPS=${LORA_STEPS:-1000}
BATCH=${SFT_BATCH:-16}
SEQ=${SFT_SEQ:-56}
LR=${SFT_LR:-5e-4}
LORA_LR=${LORA_LR:-2e-3}
LORA_R=${LORA_R:-16}
LORA_TARGETS=${LORA_TARGETS:-all-linear}
# The longest answer ("in the snowy woods") is 4 tokens of the demo tokenizer; 8 leaves room
# and keeps the base model's rambling answers cheap.
MAX_NEW=8
BASE=runs/demo
DATA=data/story-qa
OUT=runs/demo-sft

[ -x "$SLLM" ] || { echo "demo-sft: $SLLM not found; run \`make binary\` first" >&2; exit 1; }
section() { printf '\n==== %s\n' "$*"; }
start=$SECONDS

section "1/5 the pretrained base model ($BASE)"
if [ -f "$BASE/latest" ]; then
  echo "reusing $BASE ($(cat "$BASE/latest")); delete it to pretrain again"
else
  echo "$BASE is missing: running the pretraining demo first (tools/demo.sh)"
  SLLM="$SLLM" bash tools/demo.sh
fi

section "2/5 story-QA instruction set -> $DATA"
rm -rf "$OUT"
mkdir -p "$OUT"
"$SLLM" data story-qa --out "$DATA" --train "$TRAIN" --val 200 --test "$TEST" --seed 1337
head -n 1 "$DATA/test.jsonl"

# accuracy_of FILE: the "accuracy" of an eval report, in percent with one decimal.
accuracy_of() { sed -n 's/^  "accuracy": \([-+0-9.eE]*\),*$/\1/p' "$1" | awk '{ printf "%.1f", 100 * $1 }'; }
seconds_of() { sed -n 's/^  "seconds": \([-+0-9.eE]*\),*$/\1/p' "$1"; }
rss_of() { sed -n 's/^  "peak_rss_bytes": \([0-9]*\),*$/\1/p' "$1"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.0f MiB", b / 1048576 }'; }

section "3/5 prompting the base model: zero-shot and $SHOTS-shot, plain text"
# The base model never saw ChatML's special tokens, so it is prompted the way its pretraining
# text reads: "Story: ...\nQuestion: ...\nAnswer:" (with solved examples before it few-shot).
"$SLLM" eval --model "$BASE" --data "$DATA/test.jsonl" --format plain --threads "$THREADS" --examples 2 \
  --max-new-tokens "$MAX_NEW" --out "$OUT/eval-zero-shot.json"
"$SLLM" eval --model "$BASE" --data "$DATA/test.jsonl" --format plain --shots "$SHOTS" --shots-from "$DATA/train.jsonl" \
  --threads "$THREADS" --examples 2 --max-new-tokens "$MAX_NEW" --out "$OUT/eval-few-shot.json"

# finetune NAME STEPS LR [sft flags...]: trains $OUT/NAME, records wall time and the log.
finetune() {
  local name=$1 steps=$2 lr=$3
  shift 3
  local t0=$SECONDS
  "$SLLM" sft --model "$BASE" --data "$DATA/train.completion.jsonl" --template none --out "$OUT/$name" \
    --steps "$steps" --batch "$BATCH" \
    --seq "$SEQ" --lr "$lr" --warmup 10 --val-count 100 --eval-every 0 --threads "$THREADS" --quiet "$@" \
    2> >(tee "$OUT/$name.log" >&2)
  echo $((SECONDS - t0)) >"$OUT/$name.seconds"
}

section "4/5 fine-tuning: full ($STEPS steps, lr $LR), LoRA and QLoRA (r $LORA_R, $LORA_TARGETS, $LORA_STEPS steps, lr $LORA_LR)"
finetune full "$STEPS" "$LR" --method full
lora_flags=(--lora-r "$LORA_R" --lora-alpha $((2 * LORA_R)) --lora-dropout 0 --lora-targets "$LORA_TARGETS")
finetune lora "$LORA_STEPS" "$LORA_LR" --method lora "${lora_flags[@]}"
# QLoRA: the same adapter over the base quantized on load (NF4 + double quantization,
# blocksize 64: sft's defaults, spelled out); it prints the packed weights' bits per parameter.
finetune qlora "$LORA_STEPS" "$LORA_LR" --method qlora --quant-type nf4 --quant-blocksize 64 "${lora_flags[@]}"

section "5/5 held-out exact match of the fine-tuned models (the same plain prompt, no shots)"
"$SLLM" eval --model "$OUT/full" --data "$DATA/test.jsonl" --format plain --threads "$THREADS" --examples 2 \
  --max-new-tokens "$MAX_NEW" --out "$OUT/eval-full.json"
"$SLLM" eval --model "$BASE" --adapter "$OUT/lora" --data "$DATA/test.jsonl" --format plain --threads "$THREADS" \
  --examples 2 --max-new-tokens "$MAX_NEW" --out "$OUT/eval-lora.json"
# The QLoRA adapter over the 4-bit base it was trained on: the same quantization written out
# as a bitsandbytes directory, loaded as it is (no fp32 copy of the Linears in the process).
"$SLLM" quantize --model "$BASE" --out "$OUT/base-nf4" --nf4 --blocksize 64 --threads "$THREADS"
"$SLLM" eval --model "$OUT/base-nf4" --adapter "$OUT/qlora" --data "$DATA/test.jsonl" --format plain \
  --threads "$THREADS" --examples 2 --max-new-tokens "$MAX_NEW" --out "$OUT/eval-qlora.json"

# ---- the table -------------------------------------------------------------------------------
trainable_of() { sed -n 's/^sft: method [a-z]*, \([0-9]*\) trainable parameters$/\1/p' "$OUT/$1.log"; }
# The largest peak_mem_bytes of the run's metrics (written by the training loop where it
# measures memory); "" when the metrics do not have it.
peak_of() { sed -n 's/.*"peak_mem_bytes":\([0-9]*\).*/\1/p' "$OUT/$1/metrics.jsonl" | sort -n | tail -n 1; }
steps_done() { sed -n 's/.*"step":\([0-9]*\).*/\1/p' "$OUT/$1/metrics.jsonl" | tail -n 1; }

rows_md=""
rows_json=""
bars=()
add_row() {  # NAME LABEL TRAINABLE PEAK_BYTES PEAK_KIND MS_PER_STEP TRAIN_SECONDS ("" = n/a)
  local name=$1 label=$2 trainable=$3 peak=$4 kind=$5 ms=$6 secs=$7 acc
  acc=$(accuracy_of "$OUT/eval-$name.json")
  local peak_md="n/a" peak_json=null ms_md="n/a" ms_json=null train_md="n/a" train_json=null
  if [ -n "$peak" ]; then peak_md="$(mib "$peak") ($kind)"; peak_json=$peak; fi
  if [ -n "$ms" ]; then ms_md=$ms; ms_json=$ms; train_md="$secs s"; train_json=$secs; fi
  rows_md+="| $label | $acc | $trainable | $peak_md | $ms_md | $train_md |"$'\n'
  [ -n "$rows_json" ] && rows_json+=","$'\n'
  rows_json+="    {\"row\": \"$name\", \"label\": \"$label\", \"exact_match_pct\": $acc, \"trainable_params\": $trainable, \"peak_mem_bytes\": $peak_json, \"peak_mem_kind\": \"$kind\", \"ms_per_step\": $ms_json, \"train_seconds\": $train_json, \"eval_seconds\": $(seconds_of "$OUT/eval-$name.json")}"
  bars+=("$label=$acc")
}
add_row zero-shot "zero-shot" 0 "$(rss_of "$OUT/eval-zero-shot.json")" "eval" "" ""
add_row few-shot "few-shot ($SHOTS shots)" 0 "$(rss_of "$OUT/eval-few-shot.json")" "eval" "" ""
for name in full lora qlora; do
  secs=$(cat "$OUT/$name.seconds")
  steps=$(steps_done "$name")
  ms=$(awk -v s="$secs" -v n="$steps" 'BEGIN { printf "%.0f", 1000 * s / n }')
  peak=$(peak_of "$name")
  kind="training"
  [ -n "$peak" ] || kind="n/a"
  case $name in
    full) label="full fine-tuning" ;;
    lora) label="LoRA (r $LORA_R, $LORA_TARGETS)" ;;
    qlora) label="QLoRA (NF4+DQ base, r $LORA_R, $LORA_TARGETS)" ;;
  esac
  add_row "$name" "$label" "$(trainable_of "$name")" "$peak" "$kind" "$ms" "$secs"
done

date_utc=$(date -u +%Y-%m-%d)
table="| method | held-out exact match (%) | trainable params | peak memory | ms/step | train time |
|---|---|---|---|---|---|
$rows_md"
cat >"$OUT/results.md" <<EOF
# make demo-sft results ($date_utc)

Held-out exact match on $TEST story-QA test questions ($DATA/test.jsonl; stories unseen in
training). Base: $BASE (small preset, $(cat "$BASE/latest")). Fine-tuning: $TRAIN training examples,
batch $BATCH x seq $SEQ, $STEPS full / $LORA_STEPS LoRA and QLoRA steps, lr $LR full / $LORA_LR LoRA and QLoRA,
$THREADS threads. QLoRA: the same adapter settings as LoRA over the base quantized on load to NF4
with double quantization (blocksize 64); its held-out row is the adapter over that 4-bit base
($OUT/base-nf4, written by \`sllm quantize\`).
ms/step and train time are wall-clock of the whole \`sllm sft\` run (load and final validation included)
divided by its steps. Peak memory is the process's peak RSS: for the fine-tunes the largest
peak_mem_bytes of the run's metrics.jsonl (VmHWM; n/a if the metrics lack it), for the prompting
rows that of the \`sllm eval\` process (getrusage ru_maxrss).

$table
EOF
cat >"$OUT/results.json" <<EOF
{
  "date": "$date_utc",
  "test_questions": $TEST,
  "train_examples": $TRAIN,
  "shots": $SHOTS,
  "threads": $THREADS,
  "rows": [
$rows_json
  ]
}
EOF
"$SLLM" plot-bars --out "$OUT/accuracy.svg" --title "story-QA held-out exact match ($date_utc)" \
  --y-label "exact match (%)" --y-max 100 --bar "${bars[@]}"

section "result"
printf '%s' "$table"
echo "files: $OUT/results.md, $OUT/results.json, $OUT/accuracy.svg"
echo "whole demo-sft: $((SECONDS - start)) s"

few=$(accuracy_of "$OUT/eval-few-shot.json")
full=$(accuracy_of "$OUT/eval-full.json")
lora=$(accuracy_of "$OUT/eval-lora.json")
qlora=$(accuracy_of "$OUT/eval-qlora.json")
failed=0
awk -v a="$full" -v b="$few" 'BEGIN { exit !(a > b) }' ||
  { echo "demo-sft FAILED: full fine-tuning ($full%) does not beat few-shot ($few%)" >&2; failed=1; }
awk -v a="$lora" -v b="$few" 'BEGIN { exit !(a > b) }' ||
  { echo "demo-sft FAILED: LoRA ($lora%) does not beat few-shot ($few%)" >&2; failed=1; }
awk -v a="$lora" -v b="$full" 'BEGIN { exit !(a >= b - 5) }' ||
  { echo "demo-sft FAILED: LoRA ($lora%) is more than 5 points below full fine-tuning ($full%)" >&2; failed=1; }
awk -v a="$qlora" -v b="$lora" 'BEGIN { exit !(a >= b - 2) }' ||
  { echo "demo-sft FAILED: QLoRA ($qlora%) is more than 2 points below LoRA ($lora%)" >&2; failed=1; }
[ "$failed" -eq 0 ] || exit 1
echo "demo-sft OK: full $full% and LoRA $lora% beat few-shot $few%; LoRA within 5 points of full; QLoRA $qlora% within 2 points of LoRA"
