#!/usr/bin/env bash
# Create (or reuse) the local virtual environment for `make test` / `make demo`.
#   - reuses a torch that is already installed (the venv sees system site-packages);
#   - otherwise installs the CPU build of torch on a machine without an NVIDIA GPU (never the
#     multi-GB CUDA wheels), and the default build where `nvidia-smi` finds a GPU.
# Usage: tools/setup_env.sh VENV PYTHON TORCH_VERSION
set -euo pipefail
venv=${1:-.venv}
python=${2:-python3}
torch_version=${3:-2.13.0}

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv --system-site-packages "$venv"
fi
py="$venv/bin/python"

if "$py" -c "import torch" 2>/dev/null; then
  echo "setup: reusing torch $("$py" -c 'import torch; print(torch.__version__)')"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  "$py" -m pip install "torch==$torch_version"
else
  # A local wheel or mirror that carries the +cpu build is used first; otherwise PyTorch's CPU index.
  "$py" -m pip install "torch==$torch_version+cpu" 2>/dev/null \
    || "$py" -m pip install "torch==$torch_version+cpu" --index-url https://download.pytorch.org/whl/cpu \
         --extra-index-url https://pypi.org/simple
fi
# pillow (images, GIF) and imageio-ffmpeg (MP4, bundles its own ffmpeg) serve the CLI demo, eval and tests;
# ComfyUI already ships pillow, so the node pack itself needs neither.
"$py" -m pip install -r requirements.txt numpy pytest pillow imageio-ffmpeg
