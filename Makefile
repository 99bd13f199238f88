# The README's commands. Each target sets up what it needs; a second run reuses what exists.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VLLM_VENV := .venv-vllm
MODEL_DIR := var/models/SmolLM2-135M-Instruct
PY := $(VENV)/bin/python
# `make test ARGS="-k consumer"` passes arguments to pytest.
ARGS ?=

.PHONY: demo test test-fast setup setup-vllm browser lint format bench seed clean help

help:
	@echo "make demo   - set up everything and run the site with a working demo"
	@echo "make test   - set up everything and run the whole test suite"
	@echo "make lint   - ruff and the migrations check"
	@echo "make bench  - streaming benchmarks (bench/)"

demo: setup $(if $(LLM_BASE_URL),,setup-vllm)
	$(PY) -m interview_platform.devstack demo

test: setup setup-vllm browser
	$(PY) -m interview_platform.devstack test $(ARGS)

# Without the browser and whole-stack tests.
test-fast: setup setup-vllm
	$(PY) -m interview_platform.devstack test -m "not e2e" $(ARGS)

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (set PYTHON=...)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "[setup] installing the app's Python packages into $(VENV) (a few minutes the first time)"
	@$(PY) -m pip install -qq --upgrade pip
	@$(PY) -m pip install -qq -e ".[dev]"
	@touch $@

# The interviewer model server: vLLM (CPU build) in its own venv, and the model converted once.
setup-vllm: $(VLLM_VENV)/.ready $(MODEL_DIR)/.ready

$(VLLM_VENV)/.ready: scripts/setup_vllm_venv.sh
	VLLM_VENV=$(VLLM_VENV) bash scripts/setup_vllm_venv.sh

$(MODEL_DIR)/.ready: $(VLLM_VENV)/.ready scripts/prepare_model.py
	$(VLLM_VENV)/bin/python scripts/prepare_model.py --out $(MODEL_DIR) --var var

# Real Chromium for the browser tests (Playwright drives the system build; its own download is not used).
browser:
	@if [ -x /usr/bin/chromium ]; then exit 0; fi; \
	echo "[browser] installing Debian's chromium"; \
	SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null \
	  || { echo "Could not install chromium: install it with your package manager (it must be /usr/bin/chromium, or set CHROMIUM_PATH)"; exit 1; }

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DATABASE_URL=$${DATABASE_URL:-postgres://localhost/unused} $(PY) manage.py makemigrations --check --dry-run

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The streaming benchmark isolates platform overhead with a fixed-rate scripted token source, so no
# model server is started (an unreachable LLM_BASE_URL tells devstack not to).
bench: setup
	LLM_BASE_URL=http://127.0.0.1:9/v1 $(PY) -m interview_platform.devstack run $(PY) bench/bench_streaming.py $(ARGS)

seed: setup
	$(PY) manage.py seed_questions

clean:
	rm -rf $(VENV) $(VLLM_VENV) var staticfiles
