#!/usr/bin/env bash
# Kernel tests and benchmarks of sparsekd on a lent GPU machine (no network there), in one call, under 5 min.
#
# What it does: installs the Vulkan loader from .gl/*.deb, unpacks Deno 2.9.6 and an npm-only DENO_DIR from
# .devbundle/ (both ignored by git; see "Prepare" below), then, each step under `timeout` and inside one
# overall deadline, going on after a failure:
#   (0) the adapter: description, features and limits ($OUT/adapter.json);
#   (a) the streaming roofline (read with its sum checked against the CPU's, and copy) at 0.5, 1 and 2 GiB;
#   (b) the GPU kernel tests (tests/kernels_topk_test.ts, kernels_topk_radix_test.ts, kernels_topk_select_test.ts,
#       kernels_sparse_kd_test.ts, train_kd_loss_op_test.ts, gpu_runtime_test.ts);
#   (c) old vs new top-k (bench/topk_compare.ts): today's kernel (wg) against the radix kernel, timed the same
#       way as (d), results compared bit for bit, and the kernel `auto` picks on this adapter;
#   (d) `bench topk` and `bench sparse-kd` (four shapes): kernel times from GPU timestamps (timestamp-query,
#       compute-pass timestampWrites) where the adapter has them, else a wall-time fit a + b*N over
#       N = 10/50/200 dispatches per submission (b reported); "% of roofline" only where the roofline's time
#       grows with size;
#   (e) every new bench/results/*.json into $OUT, and $OUT/summary.md (markdown of them), beside $OUT/log.txt.
# Everything runs with --cached-only: nothing is fetched.
#
# Prepare (a fresh session, on the CPU machine, once; rebuild when deno.lock changes):
#   bash bench/device/run.sh prepare
# makes .gl/ (apt-get download of libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2, amd64) and
# .devbundle/ (deno.xz: the deno 2.9.6 binary that `npx -y deno@2.9.6` runs, xz -6; deno_dir.tar.xz: the npm/
# folder of a DENO_DIR filled by `deno cache` of the entry points above, tfjs source maps removed).
#
# Call (device tool):  run  command: "bash bench/device/run.sh"  carry: [".gl", ".devbundle"]  timeout_s: 330
# Rehearsal (CPU, software adapter, small sizes, no loader install; NO_BUNDLE=1: the local deno and DENO_DIR):
#   OUT=/tmp/devout SKIP_GL_UNPACK=1 SMALL=1 NO_BUNDLE=1 DEADLINE_S=3000 STEP_CAP_S=900 bash bench/device/run.sh
# Environment: OUT (required); DEADLINE_S (whole script, default 290); STEP_CAP_S (each bench process, default
# 60); SKIP_TESTS=1; SKIP_GL_UNPACK=1; SMALL=1 (software-adapter sizes); NO_BUNDLE=1; ROOF_MIB, TOPK_SHAPES, TOPK_FLAGS,
# KD_SHAPES, KD_FLAGS override the defaults below.
set -u
cd "$(dirname "$0")/../.."
if [ "${1:-}" != prepare ]; then
  OUT=${OUT:?OUT must name the folder for the results}
  mkdir -p "$OUT"
fi
START=$SECONDS
DEADLINE_S=${DEADLINE_S:-290} # the whole script: under 5 minutes
STEP_CAP_S=${STEP_CAP_S:-60}  # each bench process

if [ "${SMALL:-0}" = 1 ]; then # a software adapter: sizes and reps that finish in minutes
  D_ROOF_MIB="8,16,32"
  D_TOPK_SHAPES="32x32000x64"
  D_TOPK_FLAGS="--reps 2 --tfjs-reps 1 --tfjs-cpu-reps 0 --fit-ns 2,5,10"
  D_CMP_FLAGS="--reps 2 --fit-ns 2,5,10"
  D_KD_SHAPES="16x32000 8x50257"
  D_KD_FLAGS="--reps 2 --tfjs-reps 0 --modes topk,tail --fit-ns 2,5,10"
else # tf-cpu skipped: a CPU baseline on a GPU box
  D_ROOF_MIB="512,1024,2048"
  D_TOPK_SHAPES="256x32000x64 4096x32000x64 1024x131072x256 4096x50257x64"
  D_TOPK_FLAGS="--reps 5 --tfjs-reps 2 --tfjs-cpu-reps 0"
  D_CMP_FLAGS="--reps 3"
  D_KD_SHAPES="1024x32000 4096x32000 1024x131072 4096x50257"
  D_KD_FLAGS="--reps 5 --tfjs-reps 2"
fi
ROOF_MIB=${ROOF_MIB:-$D_ROOF_MIB}
TOPK_SHAPES=${TOPK_SHAPES:-$D_TOPK_SHAPES}
TOPK_FLAGS=${TOPK_FLAGS:-$D_TOPK_FLAGS}
CMP_FLAGS=${CMP_FLAGS:-$D_CMP_FLAGS}
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
  if [ "${NO_BUNDLE:-0}" = 1 ]; then # rehearsal: the deno that npx runs, with this machine's DENO_DIR
    ln -s "$(npx -y deno@2.9.6 eval 'console.log(Deno.execPath())' | tail -1)" "$tmp/deno"
    export DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 PATH=$tmp:$PATH
  else
    unxz_to .devbundle/deno.xz >"$tmp/deno" && chmod +x "$tmp/deno"
    unxz_to .devbundle/deno_dir.tar.xz | tar -xf - -C "$tmp/deno_dir"
    export DENO_DIR=$tmp/deno_dir DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 PATH=$tmp:$PATH
  fi
  # The Vulkan loader (Mesa's WSI) warns on stderr when XDG_RUNTIME_DIR is unset; the runtime sets its own,
  # the probes below run before it.
  [ -n "${XDG_RUNTIME_DIR:-}" ] || { export XDG_RUNTIME_DIR=$tmp/xdg && mkdir -p -m 700 "$XDG_RUNTIME_DIR"; }
  echo "deno: $(deno --version | head -1); DENO_DIR=${DENO_DIR:-default}; VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"
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

  echo "roofline: $ROOF_MIB MiB; topk: $TOPK_SHAPES / $TOPK_FLAGS; sparse-kd: $KD_SHAPES / $KD_FLAGS"
  local limits='const a = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
    const l = {}; for (const k in a.limits) l[k] = a.limits[k];
    const i = {}; for (const k in a.info) i[k] = a.info[k];
    console.log(JSON.stringify({ info: i, features: [...a.features].sort(), limits: l }, null, 2));'
  step adapter 30 bash -c "deno eval '$limits' > '$OUT/adapter.json' && cat '$OUT/adapter.json'"
  step roofline "$STEP_CAP_S" deno run -A --cached-only bench/roofline.ts --sizes-mib "$ROOF_MIB"
  if [ "${SKIP_TESTS:-0}" = 1 ]; then
    SUMMARY+="tests: skipped (SKIP_TESTS=1)"$'\n'
  else
    step tests 150 deno test -A --cached-only tests/kernels_topk_test.ts tests/kernels_topk_radix_test.ts \
      tests/kernels_topk_select_test.ts tests/kernels_sparse_kd_test.ts tests/train_kd_loss_op_test.ts tests/gpu_runtime_test.ts
  fi
  # shellcheck disable=SC2086 # the flags are meant to split
  step "topk old vs new" "$STEP_CAP_S" deno run -A --cached-only bench/topk_compare.ts --shapes \
    "$(echo "$TOPK_SHAPES" | tr ' ' ',')" $CMP_FLAGS
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
  deno run -A --cached-only bench/device/summarize.ts "$OUT"
  echo "=== summary (total $((SECONDS - START))s)"
  printf '%s' "$SUMMARY"
  echo "results in \$OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
}

prepare() { # on the CPU machine: the loader debs and the Deno bundle this script carries
  rm -rf .gl .devbundle && mkdir -p .gl .devbundle
  (cd .gl && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  local deno
  deno=$(npx -y deno@2.9.6 eval 'console.log(Deno.execPath())' | tail -1)
  xz -6 -T0 -c "$deno" >.devbundle/deno.xz
  local dir
  dir=$(mktemp -d)
  DENO_DIR=$dir npx -y deno@2.9.6 cache tasks/bench.ts bench/roofline.ts bench/topk_compare.ts \
    bench/device/summarize.ts tests/kernels_topk_test.ts tests/kernels_topk_radix_test.ts tests/kernels_topk_select_test.ts \
    tests/kernels_sparse_kd_test.ts tests/train_kd_loss_op_test.ts tests/gpu_runtime_test.ts
  find "$dir/npm" -name '*.map' -delete
  tar -C "$dir" -cf - npm | xz -6 -T0 >.devbundle/deno_dir.tar.xz
  rm -rf "$dir"
  du -sh .gl .devbundle
}

if [ "${1:-}" = prepare ]; then
  prepare
  exit
fi
main 2>&1 | tee "$OUT/log.txt"
