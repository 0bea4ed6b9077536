#!/usr/bin/env bash
# Builds the rasterizer for another CPU target beside the installed (native) build, so that its
# tests can run against that code path: tools/build_rasterizer_isa.sh ARCH OUT_DIR
#   ARCH: a -march value (x86-64-v3 = AVX2, as most laptops; x86-64 = the generic vector path)
# The package lands in OUT_DIR/diff_gaussian_rasterization; run tests with PYTHONPATH=OUT_DIR.
# Objects go to OUT_DIR/obj, never to the package's own build/ folder, so the native build's
# objects are not reused with other flags.
set -euo pipefail
arch=$1
out=$(realpath -m "$2")
PY=$(realpath -s "${PY:-$(command -v python)}")
pkg=submodules/diff-gaussian-rasterization
rm -rf "$out"
mkdir -p "$out"
(cd "$pkg" && DGR_CPU_ARCH="$arch" DGR_CPU_ONLY=1 "$PY" setup.py -q build_ext \
    --build-lib "$out" --build-temp "$out/obj" > "$out/build.log" 2>&1) \
    || { tail -40 "$out/build.log"; exit 1; }
cp "$pkg"/diff_gaussian_rasterization/*.py "$out/diff_gaussian_rasterization/"
rm -rf "$out/obj"
echo "built the rasterizer for -march=$arch in $out"
