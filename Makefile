# qa-sweep: the commands a user and CI run. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
CARGO ?= cargo
# The real evaluation sets the tests read (DRCD dev/test, CMRC 2018 dev/trial, the
# bert-base-chinese vocab), kept in the repository with their licences (testdata/README.md).
SHARED ?= $(abspath testdata)
RESULTS ?= results
DEMO_QUESTIONS ?= 2500
PYTHON_VENV := tools/.venv/bin/python

.PHONY: all build test test-all test-wgpu test-runner check-deps lint fmt fuzz demo demo-data tune-lr bench-search burn-vs-pytorch data-link bench bench-runner bench-serve venv gpu-prepare parity amp-check clean

all: build

build:
	$(CARGO) build --release --locked --bin sweep

## The whole test suite (unit, integration, CLI). Reads testdata/ (QA_SWEEP_SHARED_DATA overrides).
test:
	QA_SWEEP_SHARED_DATA="$${QA_SWEEP_SHARED_DATA:-$(SHARED)}" $(CARGO) test --workspace --locked

## `make test` plus the tests it reports as ignored because they need a service: a Slurm
## cluster (`sudo tools/slurm-local.sh`), Debian's chromium, root (tmpfs mounts). Each of
## those fails when its service is missing. CI runs this with TEST_FEATURES="$(WGPU_FEATURES)",
## so one build also runs test-wgpu's tests.
TEST_FEATURES ?=
test-all:
	QA_SWEEP_SHARED_DATA="$${QA_SWEEP_SHARED_DATA:-$(SHARED)}" XDG_RUNTIME_DIR="$${XDG_RUNTIME_DIR:-/tmp}" \
		$(CARGO) test --workspace --locked $(TEST_FEATURES) -- --include-ignored

## burn's GPU code path without a GPU: the wgpu backend (the fusion, CubeCL kernels and
## autodiff a CUDA trial runs; WGSL instead of CUDA's codegen) against HF's logits and flex's
## gradients and training, step by step; a killed wgpu trial resuming; burn issues #5122,
## #5257, #5352, #4949 on our shapes; `sweep predict --device wgpu:0` against the CPU's
## answers. Needs a Vulkan adapter: any GPU's driver, or lavapipe on the CPU
## (`apt install mesa-vulkan-drivers`), as in CI. docs/gpu.md says what it proves.
WGPU_FEATURES := --features qa-model/wgpu,cli/wgpu
test-wgpu:
	XDG_RUNTIME_DIR="$${XDG_RUNTIME_DIR:-/tmp}" $(CARGO) test --locked -p qa-model -p cli $(WGPU_FEATURES) -- wgpu

## The runner's own tests (every outcome, retries, kill -9, two runners, Ctrl-C, sequential
## seeds, database failures, Slurm when a cluster answers) with the fake trial, without
## building burn or the `sweep` binary.
test-runner:
	$(CARGO) test --locked -p runner

## spec, store, stats, search, runner, report and serve must not depend on burn (CI runs this).
check-deps:
	@for c in spec store stats search runner report serve; do \
		if $(CARGO) tree --locked -p $$c -e normal --prefix none | grep -q '^burn'; then \
			echo "$$c depends on burn: $$($(CARGO) tree --locked -p $$c -i burn 2>/dev/null | head -5)" >&2; exit 1; \
		fi; \
	done; echo "spec, store, stats, search, runner, report, serve: no burn"

## Long fuzz runs of every loader (study/trial YAML, HF config.json, SQuAD and predictions
## JSON, tokenizer.json, vocab.txt, tokenizer_config.json, safetensors, pytorch_model.bin,
## sharded indexes, metrics.jsonl, result.json): FUZZ_CASES inputs each. `make test` runs 200.
FUZZ_CASES ?= 20000
fuzz:
	set -o pipefail; QA_SWEEP_FUZZ_CASES=$(FUZZ_CASES) QA_SWEEP_SHARED_DATA="$${QA_SWEEP_SHARED_DATA:-$(SHARED)}" \
		$(CARGO) test --locked -p spec -p runner --test fuzz -- --nocapture 2>&1 | grep -E '^(fuzz |test result)'
	set -o pipefail; QA_SWEEP_FUZZ_CASES=$(FUZZ_CASES) QA_SWEEP_SHARED_DATA="$${QA_SWEEP_SHARED_DATA:-$(SHARED)}" \
		$(CARGO) test --locked -p qa-data -p qa-model --test integration fuzz:: -- --nocapture 2>&1 | grep -E '^(fuzz |test result)'

## LINT_FEATURES: CI lints with the CUDA and wgpu code compiled in (one check build instead of
## a lint and a separate CUDA check).
LINT_FEATURES ?=
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked $(LINT_FEATURES) -- -D warnings

fmt:
	$(CARGO) fmt --all

## The main job on the embedded default: the demo study (experiments/demo.yaml), the
## homework's ablations in miniature: synthetic data and its vocabulary, then tiny-BERT/ALBERT
## trials from scratch on CPU through the sweep runner (15 runs, then more seeds for the claims
## still undecided, 30 at most; README.md has the measured cost), then the status table and the
## report (results/reports/demo/index.html). Interrupt it any time; `make demo` again resumes.
demo: build demo-data
	sed 's#results/demo#$(RESULTS)/demo#g' experiments/demo.yaml > $(RESULTS)/demo/demo.yaml
	./target/release/sweep plan $(RESULTS)/demo/demo.yaml
	./target/release/sweep run $(RESULTS)/demo/demo.yaml --db $(RESULTS)/sweep.db --devices cpu $(DEMO_FLAGS)
	./target/release/sweep status demo --db $(RESULTS)/sweep.db
	./target/release/sweep report demo --db $(RESULTS)/sweep.db --out $(RESULTS)/reports/demo
	@echo
	@echo "Report: $(RESULTS)/reports/demo/index.html (and report.md beside it)"
	@echo "Results: $(RESULTS)/sweep.db (sweep status / sweep export demo --format csv); trial folders in $(RESULTS)/trials/."

## A small TPE search with ASHA pruning on the demo's data (experiments/tune-lr.yaml).
tune-lr: build demo-data
	sed 's#results/demo#$(RESULTS)/demo#g' experiments/tune-lr.yaml > $(RESULTS)/demo/tune-lr.yaml
	./target/release/sweep plan $(RESULTS)/demo/tune-lr.yaml
	./target/release/sweep run $(RESULTS)/demo/tune-lr.yaml --db $(RESULTS)/sweep.db --devices cpu $(DEMO_FLAGS)
	./target/release/sweep status tune-lr --db $(RESULTS)/sweep.db
	./target/release/sweep report tune-lr --db $(RESULTS)/sweep.db --out $(RESULTS)/reports/tune-lr
	@echo
	@echo "Report: $(RESULTS)/reports/tune-lr/index.html (and report.md beside it)"

## qa-sweep's TPE against Optuna's TPESampler on Branin and Hartmann-6 (budgets 50 and 100,
## 50 repeats each); the table goes to docs/benchmarks.md, "Search". Needs the tools venv.
bench-search: venv
	@mkdir -p $(RESULTS)
	rm -f $(RESULTS)/tpe-qa-sweep.jsonl $(RESULTS)/tpe-optuna.jsonl
	for b in 50 100; do \
		$(CARGO) run --release --locked -q -p search --example tpe_bench $$b 50 >> $(RESULTS)/tpe-qa-sweep.jsonl && \
		$(PYTHON_VENV) tools/tpe_optuna.py $$b 50 >> $(RESULTS)/tpe-optuna.jsonl || exit 1; \
	done
	$(PYTHON_VENV) tools/tpe_optuna.py --compare $(RESULTS)/tpe-qa-sweep.jsonl $(RESULTS)/tpe-optuna.jsonl

## The demo's synthetic data and vocabulary (results/demo/), shared by the demo and
## burn-vs-pytorch.
demo-data: build
	@mkdir -p $(RESULTS)/demo
	./target/release/sweep data synth --out $(RESULTS)/demo/synthetic_train.json --questions $(DEMO_QUESTIONS) --seed 1
	./target/release/sweep data synth --out $(RESULTS)/demo/synthetic_dev.json --questions 600 --seed 2
	./target/release/sweep data vocab --dataset $(RESULTS)/demo/synthetic_train.json \
		--dataset $(RESULTS)/demo/synthetic_dev.json --out $(RESULTS)/demo/vocab.txt

## The demo's tiny BERT trained by burn and by PyTorch + transformers (tools/hf_run_qa.py, a
## program trial) as one study, decided by qa-sweep's statistics
## (experiments/burn-vs-pytorch.yaml); its tables go to docs/benchmarks.md. Needs the tools
## venv. Part of `make parity`.
burn-vs-pytorch: venv demo-data
	sed 's#results/demo#$(RESULTS)/demo#g' experiments/burn-vs-pytorch.yaml > $(RESULTS)/demo/burn-vs-pytorch.yaml
	./target/release/sweep plan $(RESULTS)/demo/burn-vs-pytorch.yaml
	./target/release/sweep run $(RESULTS)/demo/burn-vs-pytorch.yaml --db $(RESULTS)/sweep.db --devices cpu
	./target/release/sweep status burn-vs-pytorch --db $(RESULTS)/sweep.db
	./target/release/sweep report burn-vs-pytorch --db $(RESULTS)/sweep.db --out $(RESULTS)/reports/burn-vs-pytorch
	$(PYTHON_VENV) tools/study_section.py --report $(RESULTS)/reports/burn-vs-pytorch/report.md \
		--name burn-vs-pytorch --command "make burn-vs-pytorch" \
		--title "burn against PyTorch as one study: experiments/burn-vs-pytorch.yaml"

## Link data/ to the evaluation sets (testdata/: drcd/, cmrc2018/, vocab/) for
## experiments/drcd-local.yaml.
data-link:
	ln -sfn $(SHARED) data

venv:
	tools/setup-venv.sh >/dev/null

## Benchmarks against HF transformers / PyTorch in the same run; writes docs/benchmarks.md.
bench: venv bench-runner bench-serve bench-search
	$(CARGO) build --release --locked -p qa-data --example bench_data
	$(PYTHON_VENV) tools/bench_data.py --shared "$${QA_SWEEP_SHARED_DATA:-$(SHARED)}" \
		--rust-bin target/release/examples/bench_data
	$(CARGO) build --release --locked -p cli
	$(PYTHON_VENV) tools/bench_train.py --sweep target/release/sweep

## Runner numbers only (no Python needed): planning 10,000 trials, ingesting 1,000,000 metric
## rows, overhead per trial against spawning the same fake trials directly.
bench-runner:
	$(CARGO) build --release --locked -p runner --bin fake-trial
	$(CARGO) run --release --locked -p runner --example bench_runner -- target/release/fake-trial docs/benchmarks.md

## The live view under load (no Python needed): a sweep of fake trials alone and with 50
## clients polling `sweep serve`, as a ratio; writes docs/benchmarks.md.
bench-serve:
	$(CARGO) build --release --locked -p runner --bin fake-trial
	$(CARGO) run --release --locked -p serve --example bench_serve -- target/release/fake-trial docs/benchmarks.md

## Training parity with a PyTorch + transformers loop (run_qa semantics), tools/parity.py:
## first the lockstep runs (seed 1 of each trial as one computation on both sides, dropout off
## and on: the loss must agree step by step), then seeds 1-3 of the demo's tiny preset and of a
## real pretrained BERT from PyPI (all-MiniLM-L6-v2), both scored by `sweep score`. Seeds are
## kept in docs/parity-runs.json (more with --seeds/--pretrained-seeds); writes the parity
## section of docs/benchmarks.md and docs/parity-loss.png. Needs the tools venv (torch,
## transformers); about 45 minutes on 2 cores, after `make burn-vs-pytorch` (about 21).
parity: venv build burn-vs-pytorch
	$(PYTHON_VENV) tools/parity.py --sweep target/release/sweep --seeds 1 2 3 --pretrained-seeds 1 2 3

## Mixed precision (f16/bf16) against f32 on CPU: tiny and mini presets, 3 seeds, the
## release build; writes docs/benchmarks.md (amp section). Python 3 standard library only.
amp-check: build
	python3 tools/amp_check.py --sweep target/release/sweep

## The CUDA build for the GPU machine (no GPU needed here): a stripped `sweep-cuda` at the
## root (it must stay under 40 MiB, #12: 64 MiB travel in all, the tracked tree is ~23 MiB with testdata/),
## then one call of scripts/gpu-check.sh there (docs/gpu.md).
gpu-prepare:
	CARGO_TARGET_DIR=target/cuda $(CARGO) build --profile gpu --locked -p cli --features cuda
	strip -o sweep-cuda target/cuda/gpu/sweep
	@ls -la sweep-cuda
	@test $$(stat -c %s sweep-cuda) -le 41943040 || (echo "sweep-cuda is over 40 MiB" >&2; exit 1)

clean:
	$(CARGO) clean
	rm -rf $(RESULTS)
