#!/usr/bin/env bash
# One call on the GPU machine (no Rust there): CUDA path parity, throughput against PyTorch,
# and a short real training run. Expects the stripped CUDA build at ./sweep-cuda
# (make gpu-prepare), the repository's fixtures, and $OUT.
# Writes logs and summary.json under $OUT; ends well inside 8 minutes.
set -uo pipefail
OUT="${OUT:-$(pwd)/gpu-out}"
mkdir -p "$OUT"
log() { echo "== $*" | tee -a "$OUT/run.log"; }
summary="$OUT/summary.jsonl"
: > "$summary"

log "0. environment"
{ nvidia-smi; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; \
  (nvcc --version || true); echo "CUDA_PATH=${CUDA_PATH:-}"; \
  for d in "${CUDA_PATH:-}" /usr/local/cuda /opt/cuda; do [ -n "$d" ] && ls -d "$d/include/cuda.h" 2>/dev/null; done; \
  python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)'; } > "$OUT/env.txt" 2>&1
[ -z "${CUDA_PATH:-}" ] && [ -d /usr/local/cuda ] && export CUDA_PATH=/usr/local/cuda
cat "$OUT/env.txt" | head -30

log "1. parity: fixtures on cuda:0 vs HF's logits"
for m in bert-tiny albert-tiny bert-tiny-legacy; do
  d=crates/qa-model/tests/fixtures/$m
  timeout 120 ./sweep-cuda check-logits --model "$d" --reference "$d/expected_logits.json" --device cuda:0 \
    >> "$summary" 2>> "$OUT/parity.log" || echo "{\"parity_failed\": \"$m\"}" >> "$summary"
done

log "2. throughput: burn-cuda vs PyTorch (base preset, seq 384)"
for b in 32 4; do
  for p in f32 bf16 f16; do
    timeout 150 ./sweep-cuda bench-train --preset base --batch "$b" --seq 384 --warmup 3 --steps 10 \
      --device cuda:0 --precision "$p" >> "$summary" 2>> "$OUT/bench.log" \
      || echo "{\"bench_failed\": \"base b$b $p\"}" >> "$summary"
  done
  timeout 150 python3 tools/bench_gpu_torch.py base "$b" 384 3 10 >> "$summary" 2>> "$OUT/bench.log" \
    || echo "{\"torch_failed\": \"base b$b\"}" >> "$summary"
done

log "3. short training run (mini preset, synthetic set) on cuda:0"
T="$OUT/train"; mkdir -p "$T"
./sweep-cuda data synth --out "$T/train.json" --questions 3000 --seed 1 2>> "$OUT/train.log"
./sweep-cuda data synth --out "$T/dev.json" --questions 600 --seed 2 2>> "$OUT/train.log"
./sweep-cuda data vocab --dataset "$T/train.json" --dataset "$T/dev.json" --out "$T/vocab.txt" 2>> "$OUT/train.log"
cat > "$T/trial.yaml" <<YAML
model: {preset: mini, vocab: $T/vocab.txt}
data: {train: $T/train.json, eval: $T/dev.json}
train: {seed: 1, epochs: 2, learning_rate: 5.0e-4, batch_size: 32, eval_batch_size: 128, warmup_ratio: 0.1,
        max_seq_length: 128, doc_stride: 32, logging_steps: 20, device: "cuda:0"}
YAML
timeout 240 ./sweep-cuda train --config "$T/trial.yaml" --out "$T/run" >> "$summary" 2>> "$OUT/train.log" \
  || echo '{"train_failed": true}' >> "$summary"
log "done"; cat "$summary"
