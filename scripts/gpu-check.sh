#!/usr/bin/env bash
# One call on a borrowed GPU machine (no Rust there): preflight, smoke test, parity, burn vs
# PyTorch throughput, a short training run, in that order, under one global deadline, so the
# most important numbers come first and a failure stops early with its logs kept.
#
#   make gpu-prepare        # here: a stripped ./sweep-cuda (<= 40 MiB)
#   device run: command "bash scripts/gpu-check.sh", carry ["sweep-cuda"], timeout_s 560
#
# Everything lands in $OUT: summary.jsonl (one JSON line per result), summary.md (the tables
# for docs/benchmarks.md, by tools/gpu_summary.py), steps.jsonl (time per step), run.log, the
# logs of each step, and cubecl's autotune and compilation logs. GPU_CHECK_BUDGET (seconds,
# default 480) is the global deadline; GPU_CHECK_ONLY=smoke,parity,bench,train,extra runs a
# subset (a rerun on a warm machine); GPU_CHECK_AUTOTUNE=minimal|balanced|extensive|full sets
# cubecl's autotune level for the throughput and training steps (default balanced: at the
# bert-base shape its tuning alone outlasted a 120 s step on an H200, 2026-12-04).
#
# Dry run on a CPU (crates/cli/tests/cli/gpu_kit.rs does this): GPU_CHECK_BIN=target/debug/sweep
# GPU_CHECK_DEVICE=cpu GPU_CHECK_SKIP_PREFLIGHT=1 GPU_CHECK_TORCH=0 GPU_CHECK_PRESET=tiny
# GPU_CHECK_SEQ=32 GPU_CHECK_TRAIN_QUESTIONS=100 runs the same flow at toy sizes.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$(pwd)/gpu-out}"
mkdir -p "$OUT"
BUDGET="${GPU_CHECK_BUDGET:-480}"
ONLY="${GPU_CHECK_ONLY:-smoke,parity,bench,train,extra}"
T0=$SECONDS
summary="$OUT/summary.jsonl"
: > "$summary"
: > "$OUT/steps.jsonl"
BIN="${GPU_CHECK_BIN:-./sweep-cuda}"
DEVICE="${GPU_CHECK_DEVICE:-cuda:0}"
PRESET="${GPU_CHECK_PRESET:-base}"
SEQ="${GPU_CHECK_SEQ:-384}"
TRAIN_QUESTIONS="${GPU_CHECK_TRAIN_QUESTIONS:-2000}"
TORCH="${GPU_CHECK_TORCH:-1}"
FIX=crates/qa-model/tests/fixtures

log() { echo "== [$((SECONDS - T0))s] $*" | tee -a "$OUT/run.log"; }
left() { echo $((BUDGET - (SECONDS - T0))); }
wanted() { [[ ",$ONLY," == *",$1,"* ]]; }

# step NAME SECONDS CMD...: runs CMD under `timeout`, never past the deadline; a step that
# cannot get half its time is skipped. Each step's time and exit code go to steps.jsonl.
step() {
  local name=$1 need=$2
  shift 2
  local l
  l=$(left)
  if [ "$l" -lt $((need / 2 + 5)) ]; then
    log "skip $name: ${l}s left"
    echo "{\"step\": \"$name\", \"skipped\": \"deadline\"}" >> "$summary"
    return 124
  fi
  local t=$((need < l - 5 ? need : l - 5)) t1=$SECONDS rc
  # A fresh bash runs the (exported) functions, so `timeout` can end the whole step.
  timeout --kill-after=5 "$t" bash -c '"$@"' "$name" "$@"
  rc=$?
  echo "{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $((SECONDS - t1))}" >> "$OUT/steps.jsonl"
  [ $rc -ne 0 ] && log "$name: exit $rc"
  return $rc
}

# Peak GPU memory while a command runs (nvidia-smi every 200 ms), as a JSON line.
with_memory() {
  local tag=$1
  shift
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$OUT/mem-$tag.txt" 2>/dev/null &
  local sampler=$!
  "$@"
  local rc=$?
  kill "$sampler" 2>/dev/null
  wait "$sampler" 2>/dev/null
  local peak
  peak=$(sort -n "$OUT/mem-$tag.txt" 2>/dev/null | tail -1)
  [ -n "$peak" ] && echo "{\"memory\": \"$tag\", \"peak_mib\": $peak}" >> "$summary"
  return $rc
}

# GPU_CHECK_PACK=1: the borrowed machine returns at most 8 files from $OUT, so on every
# way out everything but the summary and the log goes into one gpu-check.tar.gz.
pack() {
  [ -n "${GPU_CHECK_PACK:-}" ] || return 0
  local tmp
  tmp=$(mktemp -d)
  tar -czf "$tmp/gpu-check.tar.gz" -C "$OUT" . 2>/dev/null
  find "$OUT" -mindepth 1 -maxdepth 1 ! -name summary.md ! -name summary.jsonl ! -name run.log -exec rm -rf {} +
  mv "$tmp/gpu-check.tar.gz" "$OUT/"
  rmdir "$tmp"
}
trap pack EXIT

export OUT summary BIN FIX DEVICE PRESET SEQ TORCH
export -f with_memory

log "0. machine"
{ nvidia-smi; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv;
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'; } > "$OUT/env.txt" 2>&1
head -20 "$OUT/env.txt"
[ -x "$BIN" ] || { log "no $BIN: run make gpu-prepare here and carry it"; exit 2; }

log "1. preflight: CUDA headers, NVRTC, driver"
if [ -z "${GPU_CHECK_SKIP_PREFLIGHT:-}" ]; then
  # shellcheck source=scripts/gpu-preflight.sh
  source scripts/gpu-preflight.sh
  if ! gpu_preflight > "$OUT/preflight.json" 2> "$OUT/preflight.log"; then
    cat "$OUT/preflight.log"
    log "preflight failed: nothing else would work; logs kept in $OUT"
    exit 2
  fi
  cat "$OUT/preflight.log" "$OUT/preflight.json"
  cat "$OUT/preflight.json" >> "$summary"
fi

# cubecl's compiled-kernel cache on (target/), autotune and compilation logs into $OUT. A
# TOML error would make every run panic, so it is parsed before use.
cat > cubecl.toml <<TOML
[compilation]
cache = "target"
[compilation.logger]
level = "basic"
file = "$OUT/cubecl-compilation.log"
[autotune]
level = "${GPU_CHECK_AUTOTUNE:-balanced}"
[autotune.logger]
level = "minimal"
file = "$OUT/cubecl-autotune.log"
TOML
python3 -c 'import tomllib,sys; tomllib.load(open("cubecl.toml","rb"))' || { log "cubecl.toml does not parse"; rm -f cubecl.toml; }

check() { # check TAG MODEL PRECISION TOLERANCE [fusion 0|1]
  local tag=$1 model=$2 precision=$3 tol=$4 fusion=${5:-1}
  SWEEP_CUDA_FUSION=$fusion "$BIN" check-logits --model "$FIX/$model" --reference "$FIX/$model/expected_logits.json" \
    --device "$DEVICE" --precision "$precision" --tolerance "$tol" >> "$summary" 2>> "$OUT/parity-$tag.log"
}

export -f check

if wanted smoke; then
  log "2. smoke test: one fixture on $DEVICE (kernels compile now: the cold start)"
  if ! CUBECL_AUTOTUNE_LEVEL=minimal step smoke 90 check smoke bert-aligned f32 1e-2; then
    tail -40 "$OUT/parity-smoke.log"
    log "smoke test failed: stopping; logs kept in $OUT"
    exit 3
  fi
fi

if wanted parity; then
  # The fixtures and fused/unfused pairs that CI checks on lavapipe (make test-wgpu, 1e-4);
  # 1e-2 here because Hopper's matmuls may run in TF32.
  log "3. parity with HF's logits: fused and unfused CUDA, f32 (TF32 allowed) and bf16 mixed precision"
  for m in bert-aligned bert-tiny albert-tiny bert-tiny-legacy; do
    for fusion in 1 0; do
      CUBECL_AUTOTUNE_LEVEL=minimal step "parity-$m-f32-fusion$fusion" 60 check "$m-$fusion" "$m" f32 1e-2 "$fusion"
    done
  done
  CUBECL_AUTOTUNE_LEVEL=minimal step parity-aligned-bf16 60 check aligned-bf16 bert-aligned bf16 5e-2 1
fi

bench_burn() { # bench_burn BATCH PRECISION [fusion]
  local b=$1 p=$2 fusion=${3:-1}
  with_memory "burn-b$b-$p-fusion$fusion" env SWEEP_CUDA_FUSION="$fusion" "$BIN" bench-train --preset "$PRESET" \
    --batch "$b" --seq "$SEQ" --warmup 3 --steps 10 --device "$DEVICE" --precision "$p" >> "$summary" 2>> "$OUT/bench.log"
}
bench_torch() { # bench_torch BATCH MODE...
  local b=$1
  shift
  [ "$TORCH" = 1 ] || return 0
  python3 tools/bench_gpu_torch.py "$PRESET" "$b" "$SEQ" 3 10 "$@" >> "$summary" 2>> "$OUT/bench.log"
}

export -f bench_burn bench_torch

if wanted bench; then
  log "4. throughput, $PRESET preset, seq $SEQ, batch 32: burn f32 and bf16 mixed vs PyTorch"
  step bench-burn-b32-f32 120 bench_burn 32 f32
  step bench-torch-b32 150 bench_torch 32 f32 f32-strict bf16-autocast pure-bf16
  step bench-burn-b32-bf16 120 bench_burn 32 bf16
fi

if wanted train; then
  log "5. short training run: mini preset, synthetic set, f32 on $DEVICE (CPU numbers in docs/benchmarks.md)"
  T="$OUT/train"
  mkdir -p "$T"
  "$BIN" data synth --out "$T/train.json" --questions "$TRAIN_QUESTIONS" --seed 1 2>> "$OUT/train.log"
  "$BIN" data synth --out "$T/dev.json" --questions 400 --seed 2 2>> "$OUT/train.log"
  "$BIN" data vocab --dataset "$T/train.json" --dataset "$T/dev.json" --out "$T/vocab.txt" 2>> "$OUT/train.log"
  cat > "$T/trial.yaml" <<YAML
model: {preset: mini, vocab: $T/vocab.txt}
data: {train: $T/train.json, eval: $T/dev.json}
train: {seed: 1, epochs: 1, learning_rate: 5.0e-4, batch_size: 32, eval_batch_size: 128, warmup_ratio: 0.1,
        max_seq_length: 128, doc_stride: 32, logging_steps: 10, device: "$DEVICE"}
YAML
  step train-mini 150 "$BIN" train --config "$T/trial.yaml" --out "$T/run" >> "$summary" 2>> "$OUT/train.log"
  cp "$T/run/metrics.jsonl" "$OUT/train-metrics.jsonl" 2>/dev/null
fi

if wanted extra; then
  log "6. the rest, while time lasts: batch 4 (the homework's), f16 mixed, pure bf16, unfused"
  step bench-burn-b4-f32 90 bench_burn 4 f32
  step bench-burn-b4-bf16 90 bench_burn 4 bf16
  step bench-torch-b4 120 bench_torch 4 f32 bf16-autocast
  step bench-burn-b32-f16 120 bench_burn 32 f16
  step bench-torch-b32-f16 90 bench_torch 32 f16-autocast
  step bench-burn-b32-pure-bf16 120 bench_burn 32 pure-bf16
  step bench-burn-b32-f32-unfused 120 bench_burn 32 f32 0
fi

log "done in $((SECONDS - T0))s"
python3 tools/gpu_summary.py "$summary" > "$OUT/summary.md" 2>> "$OUT/run.log" && cat "$OUT/summary.md"
rm -f cubecl.toml
