#!/usr/bin/env bash
# The GPU checks of the scoring and training benchmarks, in one run for a device session
# (`run` tool: one short call). Needs torch and transformers only. About 5 minutes on an H100.
#   bash bench/gpu_checks.sh            # prints each benchmark's figures; record them in BENCHMARKS.md
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=.
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
echo "== scoring correctness (fp32 packed/padded vs fp64 one at a time)"; timeout 120 python3 bench/gpu_score_check.py
echo "== scoring, packed rows, budget 16384";  timeout 120 python3 bench/gpu_score.py --budget 16384
echo "== scoring, padded rows, budget 16384";  timeout 120 python3 bench/gpu_score.py --budget 16384 --padded
echo "== scoring vs the naive loop, budget 65536"; timeout 180 python3 bench/gpu_score.py --budget 65536 --naive
echo "== OXA_Full train step vs plain SFT";    timeout 180 python3 bench/gpu_train_step.py
# GRPO with vLLM generation on a GPU (it runs on the CPU in .venv-vllm; never yet on a GPU).
# Needs vllm and trl installed on the GPU machine (vLLM's wheel is ~320 MiB); skipped otherwise.
if python3 -c "import vllm, trl" 2>/dev/null; then
    echo "== GRPO: two steps with colocated vLLM generation"
    timeout 600 python3 -m pytest -q -p no:cacheprovider tests/vllm/test_vllm_grpo.py
else
    echo "== GRPO with vLLM: skipped (vllm and trl not installed on this machine)"
fi
