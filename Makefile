# qa-sweep: the commands a user and CI run. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
CARGO ?= cargo
SHARED ?= $(abspath ../shared/data)
RESULTS ?= results
PYTHON_VENV := tools/.venv/bin/python

.PHONY: all build test lint fmt demo bench venv gpu-prepare clean

all: build

build:
	$(CARGO) build --release --locked --bin sweep

## The whole test suite (unit, integration, CLI). Needs ../shared/data or QA_SWEEP_SHARED_DATA.
test:
	QA_SWEEP_SHARED_DATA="$${QA_SWEEP_SHARED_DATA:-$(SHARED)}" $(CARGO) test --workspace --locked

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

## The main job on the embedded default: synthetic data, its vocabulary, and one trial of
## the tiny BERT preset trained from scratch on CPU (about 2 minutes on 2 cores).
demo: build
	@mkdir -p $(RESULTS)/demo
	./target/release/sweep data synth --out $(RESULTS)/demo/synthetic_train.json --questions 3000 --seed 1
	./target/release/sweep data synth --out $(RESULTS)/demo/synthetic_dev.json --questions 600 --seed 2
	./target/release/sweep data vocab --dataset $(RESULTS)/demo/synthetic_train.json \
		--dataset $(RESULTS)/demo/synthetic_dev.json --out $(RESULTS)/demo/vocab.txt
	./target/release/sweep data stats --dataset $(RESULTS)/demo/synthetic_dev.json \
		--vocab $(RESULTS)/demo/vocab.txt --max-seq-length 128 --doc-stride 32
	sed 's#results/demo#$(RESULTS)/demo#g' experiments/trials/synthetic-tiny.yaml > $(RESULTS)/demo/trial.yaml
	./target/release/sweep train --config $(RESULTS)/demo/trial.yaml --out $(RESULTS)/demo/trial-tiny $(DEMO_FLAGS)
	@echo
	@echo "Trial written to $(RESULTS)/demo/trial-tiny (result.json, metrics.jsonl, predictions.json, checkpoint/)."
	@echo "Sweeps over many trials arrive with the runner (see README: Status)."

venv:
	tools/setup-venv.sh >/dev/null

## Benchmarks against HF transformers / PyTorch in the same run; writes docs/benchmarks.md.
bench: venv
	$(CARGO) build --release --locked -p qa-data --example bench_data
	$(PYTHON_VENV) tools/bench_data.py --shared "$${QA_SWEEP_SHARED_DATA:-$(SHARED)}" \
		--rust-bin target/release/examples/bench_data
	$(CARGO) build --release --locked -p cli
	CARGO_TARGET_DIR=target/ndarray $(CARGO) build --release --locked -p cli \
		--no-default-features --features ndarray
	$(PYTHON_VENV) tools/bench_train.py --flex target/release/sweep --ndarray target/ndarray/release/sweep

## The CUDA build for the GPU machine (no GPU needed here): a stripped `sweep-cuda` at the
## root (about 40 MiB; it must stay under the 64 MiB that travels), then run
## scripts/gpu-check.sh there.
gpu-prepare:
	CARGO_TARGET_DIR=target/cuda $(CARGO) build --release --locked -p cli --features cuda
	strip -o sweep-cuda target/cuda/release/sweep
	@ls -la sweep-cuda

clean:
	$(CARGO) clean
	rm -rf $(RESULTS)
