#!/usr/bin/env bash
# Kernel tests and benchmarks of sparsekd on a lent GPU machine (no network there), in one call.
#
# What it does: installs the Vulkan loader from .gl/*.deb, unpacks Deno 2.9.6 and an npm-only DENO_DIR from
# .devbundle/ (both ignored by git; see "Bundle" below), prints the GPU and the WebGPU adapter (falling back to
# DENO_WEBGPU_BACKEND=gl when Vulkan finds none), then, each step under `timeout` and inside one overall
# deadline, and going on after a failure:
#   (a) the kernel correctness tests (tests/topk_test.ts, sparse_kd_test.ts, kd_loss_op_test.ts) on the GPU;
#   (b) `bench topk` and `bench sparse-kd`, one process per shape (a small topk shape first, then logits of
#       0.4-0.8 GB, well past the 60 MB L2), with --per-submit 20 on the GPU: the GPU-only timings put 20 copies
#       of the work in one submission and wait once, so Deno's ~10 ms per-wait latency does not set the number;
#       each bench prints a progress line on stderr after each phase;
#   (c) copies the new bench/results/*.json next to the whole log ($OUT/log.txt).
# Everything runs with --cached-only: nothing is fetched.
#
# Call (device tool):  run  command: "bash bench/device/run.sh"  carry: [".gl", ".devbundle"]  timeout_s: 420
# Locally (CPU, small shapes, no loader install):
#   OUT=/tmp/devout SKIP_GL_UNPACK=1 SMALL=1 DEADLINE_S=3000 bash bench/device/run.sh
# Environment: OUT (required); DEADLINE_S (whole script, default 330); STEP_CAP_S (each bench process, default
# 60); SKIP_TESTS=1 (skip (a)); SKIP_GL_UNPACK=1; SMALL=1 (CPU shapes and flags); TOPK_SHAPES, TOPK_FLAGS,
# KD_SHAPES, KD_FLAGS (space-separated shapes / the flags of every process; override the defaults below), e.g.
#   TOPK_SHAPES="256x32000x64" TOPK_FLAGS="--reps 3 --tfjs-reps 0 --tfjs-cpu-reps 0 --per-submit 20" ...
#
# Bundle (rebuild here when deno.lock changes):
#   .gl/          apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 (amd64), per
#                 the device README;
#   .devbundle/   deno.xz (xz -9e of the deno 2.9.6 linux-x64 binary) and deno_dir.tar.xz (the npm/ folder of a
#                 DENO_DIR filled by `deno cache tasks/bench.ts tests/{topk,sparse_kd,kd_loss_op}_test.ts`, with
#                 the @tensorflow packages' source maps, *_test files and unused dist bundles removed).
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:?OUT must name the folder for the results}
mkdir -p "$OUT"
START=$SECONDS
DEADLINE_S=${DEADLINE_S:-330} # the whole script, so that it ends inside a 6-minute slot
STEP_CAP_S=${STEP_CAP_S:-60}  # each bench process

if [ "${SMALL:-0}" = 1 ]; then # a CPU adapter: shapes and reps that finish in minutes
  D_TOPK_SHAPES="64x32000x64"
  D_TOPK_FLAGS="--reps 2 --tfjs-reps 1 --tfjs-cpu-reps 1"
  D_KD_SHAPES="16x32000"
  D_KD_FLAGS="--reps 2 --tfjs-reps 1 --modes topk,tail"
else # 256x32000 (33 MB) first, then 4096x32000 (524 MB), 1024x131072 (537 MB), 4096x50257 (823 MB); tf-cpu
  # skipped: a CPU baseline on a GPU box
  D_TOPK_SHAPES="256x32000x64 4096x32000x64 1024x131072x256 4096x50257x64"
  D_TOPK_FLAGS="--reps 5 --tfjs-reps 2 --tfjs-cpu-reps 0 --per-submit 20"
  D_KD_SHAPES="4096x32000 1024x131072"
  D_KD_FLAGS="--reps 20 --tfjs-reps 3 --per-submit 20"
fi
TOPK_SHAPES=${TOPK_SHAPES:-$D_TOPK_SHAPES}
TOPK_FLAGS=${TOPK_FLAGS:-$D_TOPK_FLAGS}
KD_SHAPES=${KD_SHAPES:-$D_KD_SHAPES}
KD_FLAGS=${KD_FLAGS:-$D_KD_FLAGS}

SUMMARY=""
# step NAME CAP_S CMD...: runs CMD under timeout min(CAP_S, time left before the deadline); records its status.
step() {
  local name=$1 cap=$2 left=$((DEADLINE_S - (SECONDS - START)))
  shift 2
  [ "$left" -lt "$cap" ] && cap=$left
  if [ "$cap" -le 5 ]; then
    SUMMARY+="$name: skipped (deadline)"$'\n'
    return
  fi
  echo "=== $name (timeout ${cap}s) at +$((SECONDS - START))s: $*"
  local t0=$SECONDS
  timeout -k 5 "$cap" "$@"
  local rc=$?
  SUMMARY+="$name: rc=$rc in $((SECONDS - t0))s"$'\n'
}

unxz_to() { # unxz_to FILE: decompresses FILE to stdout with xz, or with python3's lzma where xz is missing
  if command -v xz >/dev/null; then xz -dc "$1"; else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"
  fi
}

main() {
  if [ "${SKIP_GL_UNPACK:-0}" != 1 ]; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [ -f "$icd" ] && export VK_DRIVER_FILES=$icd
  local egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  [ -f "$egl" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$egl
  local tmp=${TMPDIR:-/tmp}/sparsekd-device
  rm -rf "$tmp" && mkdir -p "$tmp/deno_dir"
  unxz_to .devbundle/deno.xz >"$tmp/deno" && chmod +x "$tmp/deno"
  unxz_to .devbundle/deno_dir.tar.xz | tar -xf - -C "$tmp/deno_dir"
  export DENO_DIR=$tmp/deno_dir DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 PATH=$tmp:$PATH
  echo "deno: $(deno --version | head -1); DENO_DIR=$DENO_DIR; VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"
  ldconfig -p | grep -m1 libvulkan.so.1 || echo "no libvulkan.so.1 on this machine"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total,clocks.sm,clocks.max.sm,power.draw \
      --format=csv
  fi
  # The adapter the runs will get; with none on Vulkan, fall back to OpenGL (EGL) once.
  local probe='const a = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
    console.log("adapter:", a ? `${a.info.vendor} ${a.info.description}` : "none"); if (!a) Deno.exit(1);'
  if ! deno eval "$probe" && [ -z "${DENO_WEBGPU_BACKEND:-}" ]; then
    export DENO_WEBGPU_BACKEND=gl
    echo "no Vulkan adapter: trying DENO_WEBGPU_BACKEND=gl"
    deno eval "$probe"
  fi
  local marker=$tmp/marker
  touch "$marker"

  echo "topk: $TOPK_SHAPES / $TOPK_FLAGS; sparse-kd: $KD_SHAPES / $KD_FLAGS; per step ${STEP_CAP_S}s, deadline ${DEADLINE_S}s"
  if [ "${SKIP_TESTS:-0}" = 1 ]; then
    SUMMARY+="tests: skipped (SKIP_TESTS=1)"$'\n'
  else
    step tests 150 deno test -A --cached-only tests/topk_test.ts tests/sparse_kd_test.ts tests/kd_loss_op_test.ts
  fi
  local s
  for s in $TOPK_SHAPES; do
    # shellcheck disable=SC2086 # the flags are meant to split
    step "bench topk $s" "$STEP_CAP_S" deno run -A --cached-only tasks/bench.ts topk --shapes "$s" $TOPK_FLAGS
  done
  for s in $KD_SHAPES; do
    # shellcheck disable=SC2086
    step "bench sparse-kd $s" "$STEP_CAP_S" deno run -A --cached-only tasks/bench.ts sparse-kd --shapes "$s" $KD_FLAGS
  done

  find bench/results -maxdepth 1 -name '*.json' -newer "$marker" -exec cp {} "$OUT/" \; 2>/dev/null
  echo "=== summary (total $((SECONDS - START))s)"
  printf '%s' "$SUMMARY"
  echo "results in \$OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
}

main 2>&1 | tee "$OUT/log.txt"
