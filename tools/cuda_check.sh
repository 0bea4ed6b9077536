#!/usr/bin/env bash
# Compiles the CUDA backends (rasterizer, fused SSIM) without a GPU or a CUDA build of torch (CI
# runs this):
#  1. every kernel file with nvcc, for each architecture in CUDA_ARCHS that this nvcc supports
#     (an architecture it dropped is reported and skipped: CUDA 13 has no sm_70);
#  2. the torch adapters and the bindings with their CUDA macro, against the installed torch
#     headers;
#  3. that every launcher an adapter calls is defined by its kernel object.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
NVCC=${NVCC:-nvcc}
CUDA_ARCHS=${CUDA_ARCHS:-"70 80 90"}
DGR=submodules/diff-gaussian-rasterization
SSIM=submodules/fused-ssim
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

command -v "$NVCC" >/dev/null || { echo "cuda-check: nvcc not found"; exit 1; }
CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v "$NVCC")")")")}
# /usr/local/bin/nvcc may be a wrapper script: ask nvcc itself where its headers are.
if [ ! -f "$CUDA_HOME/include/cuda_runtime.h" ]; then
  CUDA_HOME=$("$NVCC" --dryrun -c -x cu /dev/null 2>&1 | sed -n 's/.*-I"\{0,1\}\([^" ]*\)\/include"\{0,1\}.*/\1/p' | head -1)
fi
[ -f "$CUDA_HOME/include/cuda_runtime.h" ] || { echo "cuda-check: cuda_runtime.h not found"; exit 1; }
supported=$("$NVCC" --list-gpu-arch)
compiled=0
for arch in $CUDA_ARCHS; do
  if ! grep -qx "compute_$arch" <<<"$supported"; then
    echo "cuda-check: sm_$arch skipped: $("$NVCC" --version | tail -1) does not support it"
    continue
  fi
  for cu in "$DGR"/csrc/cuda/*.cu "$SSIM"/csrc/*.cu; do
    start=$(date +%s)
    "$NVCC" -std=c++17 -O3 -arch="sm_$arch" -Werror all-warnings -c "$cu" -o "$OUT/$(basename "$cu" .cu)_sm$arch.o"
    echo "cuda-check: sm_$arch $(basename "$cu") ok ($(( $(date +%s) - start )) s)"
  done
  compiled=$((compiled + 1))
done
[ "$compiled" -gt 0 ] || { echo "cuda-check: no requested architecture is supported"; exit 1; }

TORCH_INC=$("$PY" -c "import torch.utils.cpp_extension as c; print(' '.join('-I' + p for p in c.include_paths()))")
PY_INC=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
# adapter source, its CUDA macro, the object name, the kernel object, the launchers' namespace
adapters=(
  "$DGR/csrc/cuda/rasterize_cuda.cpp DGR_WITH_CUDA dgr_adapter rasterize_kernels dgr4cuda"
  "$DGR/csrc/ext.cpp DGR_WITH_CUDA dgr_ext - -"
  "$SSIM/csrc/ext.cpp FSSIM_WITH_CUDA ssim_ext ssim_kernels fused_ssim4cuda"
)
missing=0
for entry in "${adapters[@]}"; do
  read -r src macro obj kernels namespace <<<"$entry"
  g++ -std=c++17 -O1 -fPIC -D"$macro" -DTORCH_EXTENSION_NAME=_C $TORCH_INC -I"$PY_INC" \
      -I"$CUDA_HOME/include" -I"$(dirname "$src")" -I"$DGR/csrc" -Wno-c++20-extensions \
      -c "$src" -o "$OUT/$obj.o"
  echo "cuda-check: $src with $macro ok"
  [ "$kernels" = "-" ] && continue
  defined=$(nm "$(ls "$OUT"/"$kernels"_sm*.o | head -1)" | awk '$2 == "T" {print $3}')
  called=$(nm "$OUT/$obj.o" | awk -v ns="$namespace" '$1 == "U" && index($2, ns) {print $2}')
  [ -n "$called" ] || { echo "cuda-check: $src calls no launcher (check the namespace)"; exit 1; }
  while read -r sym; do
    if ! grep -qxF "$sym" <<<"$defined"; then echo "cuda-check: undefined launcher $sym"; missing=1; fi
  done <<<"$called"
  echo "cuda-check: the $(wc -l <<<"$called") launchers $src calls are defined"
done
[ "$missing" -eq 0 ] || exit 1
echo "cuda-check: every launcher the adapters call is defined"
