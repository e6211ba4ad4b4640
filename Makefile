# mnist-lightning: `make help` lists the targets.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
CONFIG ?= configs/base.yaml
DATA ?= data
CKPT ?= best
ARGS ?=
STARTUP_ARGS ?=
ONNX ?= latest
MINUTES ?= 20
TEST_WORKERS ?= 2

.PHONY: help install train test export serve tensorboard lint bench accuracy tune-bench gpu-check clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e '.[serve,dev]'
	touch $@

install: $(VENV)/.installed ## create .venv and install the project with its dev tools

train: install ## fit CONFIG (default configs/base.yaml); extra CLI flags in ARGS="..."
	$(PY) -m mnist_lightning fit --config $(CONFIG) --data.data_dir $(DATA) $(ARGS)

test: install ## run the test suite (TEST_WORKERS=2 processes of one torch thread each: 1.7x faster on 2 cores)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --durations=15

export: install ## export CKPT (best|last|path, of the newest run) to mnist.onnx and mnist.pt without training
	$(PY) -m mnist_lightning export --ckpt_path $(CKPT) $(ARGS)

serve: install ## draw-a-digit page on http://127.0.0.1:8000 (ONNX=latest run's mnist.onnx; ARGS="--port 8080")
	$(PY) -m mnist_lightning serve --onnx $(ONNX) --data $(DATA) $(ARGS)

tensorboard: install ## serve the training curves of every run
	$(VENV)/bin/tensorboard --logdir lightning_logs

lint: install ## ruff
	$(VENV)/bin/ruff check .

bench: install ## speed on the real MNIST in DATA: per-epoch side by side, calls per step, compile tolerance, start-ups
	$(PY) benchmarks/bench_train.py --data $(DATA) $(ARGS)
	$(PY) benchmarks/compile_tolerance.py --data $(DATA)
	$(PY) benchmarks/bench_startup.py --data $(DATA) $(STARTUP_ARGS)

accuracy: install ## train base/best/fast/record for 3 seeds on the real MNIST in DATA, write benchmarks/ACCURACY.md
	$(PY) benchmarks/accuracy.py --data $(DATA) $(ARGS)

tune-bench: install ## tune configs/search/fast.yaml on the real MNIST in DATA (MINUTES=20, 2 workers), train what it finds
	$(PY) benchmarks/tune_bench.py --data $(DATA) --minutes $(MINUTES) $(ARGS)

gpu-check: install ## on a CUDA machine: GPU fits (32/bf16, compile, DDP), kill+resume, export; table of results
	$(PY) benchmarks/gpu_check.py --data $(DATA) $(ARGS)

clean: ## remove runs, exports and caches (keeps data/ and .venv/)
	rm -rf lightning_logs benchmarks/out .pytest_cache .ruff_cache
	# what the docs' examples write into this folder (export/tune --output, --predictions.output, a CSVLogger run,
	# a tune storage and its best config; a test keeps this list in step with the docs)
	rm -rf mnist.onnx mnist.pt model.onnx model.pt mine.pt preds.csv predictions.csv mycsv best_found.yaml
	rm -rf tune.db tune-*-best.yaml
	find . -name __pycache__ -prune -not -path './$(VENV)/*' -exec rm -rf {} +
