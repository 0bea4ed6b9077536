#!/usr/bin/env bash
# The rasterizer's CPU code paths beyond the native build: each -march target is built beside the
# installed (-march=native) package and, where this CPU can execute it, the rasterizer's tests run
# against it with DGR_EXPECT_ISA set, so they fail if another build was loaded. A target this CPU
# cannot execute (AVX-512 on an AVX2 machine) is still compiled in full, and reported as such.
#   PY=.venv/bin/python tools/test_portable.sh TESTS...
set -euo pipefail
PY=${PY:-python}
# -march target, the code path it selects (csrc/cpu/simd.h), the CPU flag it needs to run
TARGETS=("x86-64-v4 avx512 avx512f" "x86-64-v3 avx2 avx2" "x86-64 generic sse2")
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
for target in "${TARGETS[@]}"; do
  read -r arch isa needs <<< "$target"
  out=.build/dgr-$arch
  make --no-print-directory "$out/.built"
  if grep -qw "$needs" <<< "$flags"; then
    echo "Rasterizer tests against the -march=$arch build ($isa code path):"
    DGR_EXPECT_ISA=$isa PYTHONPATH=$out "$PY" -m pytest -q "$@"
  else
    echo "The -march=$arch build ($isa code path) compiled; this CPU lacks $needs, so its tests"\
         "run only on a machine that has it."
  fi
done
