#!/usr/bin/env bash
# Kernel tests and benchmarks of sparsekd on a lent GPU machine (no network there), in one call, under 5 min.
#
# What it does: installs the Vulkan loader from .gl/*.deb, unpacks Deno 2.9.6 and an npm-only DENO_DIR from
# .devbundle/ (both ignored by git; see "Prepare" below), then, each step under `timeout` and inside one
# overall deadline, going on after a failure, every output line stamped with the seconds since the start:
#   (0) the adapter: description, features and limits ($OUT/adapter.json);
#   (a) the streaming roofline (read with its sum checked against the CPU's, and copy) at 0.5, 1 and 2 GiB
#       (a size above the adapter's maxBufferSize, 2^31 - 1 on some, is measured at that size);
#   (b) the GPU kernel tests ($TESTS below, --no-check: `deno task check` type-checks them on the CPU);
#   (c) old vs new top-k (bench/topk_compare.ts) on CMP_SHAPES: today's kernel (wg) against the radix kernel,
#       timed as in (d), results compared bit for bit, and the kernel `auto` picks on this adapter;
#   (d) `bench topk` (TOPK_SHAPES, one process each) and `bench sparse-kd` (KD_SHAPES, one process each):
#       kernel times from GPU timestamps (timestamp-query, compute-pass timestampWrites) where the adapter
#       has them, else a wall-time fit a + b*N over N = 10/50/200 dispatches per submission (b reported);
#       "% of roofline" only where the roofline's time grows with size; tfjs's times by a short wall fit;
#   (e) $OUT/results.json (every bench JSON the run wrote, keyed by file name, with the adapter and the
#       steps), $OUT/summary.md (the steps, the adapter, one markdown table per bench), beside
#       $OUT/adapter.json, $OUT/steps.tsv and $OUT/log.txt: 5 files (the device tool brings back at most 8).
# Expected on an H200: about 100-185 s (estimate from the rehearsal: docs/performance.md, "The device script").
# Everything runs with --cached-only: nothing is fetched.
#
# Prepare (once per session, on the CPU machine, in the checkout the device tool sends: the session's own,
# not a helper's worktree; rebuild when deno.lock changes; x86-64 only; about 5 min):
#   bash bench/device/run.sh prepare
# makes .gl/ (apt-get download, amd64, with its own package lists: libvulkan1 libegl1 libglvnd0 libopengl0
# libgl1 libglx0 libgles2; 0.4 MB) and .devbundle/ (deno.xz: the deno 2.9.6 binary that `npx -y deno@2.9.6`
# runs, xz -6, 31 MB; deno_dir.tar.xz: the npm/ folder of a DENO_DIR filled by `deno cache` of the entry
# points below, source maps removed, 10 MB). With the tracked files (3.5 MB) that is ~45 MB of the 64 MiB
# that may travel (untracked files that git does not ignore travel and count too).
#
# Call (device tool):  run  command: "bash bench/device/run.sh"  carry: [".gl", ".devbundle"]  timeout_s: 330
#   (OUT is set by the tool; DEADLINE_S=290 by default.)
# Rehearsal (CPU, software adapter, small sizes, no loader install, with the bundle and no network):
#   OUT=/tmp/devout SKIP_GL_UNPACK=1 SMALL=1 DEADLINE_S=3000 STEP_CAP_S=900 TEST_CAP_S=1200 \
#     unshare -n bash bench/device/run.sh
#   (NO_BUNDLE=1 instead uses the local deno and DENO_DIR; drop `unshare -n` where it is not allowed.)
# Environment: OUT (required); DEADLINE_S (whole script, default 290); STEP_CAP_S (each bench process, default
# 60); TEST_CAP_S (the tests, default 150); SKIP_TESTS=1; SKIP_GL_UNPACK=1; SMALL=1 (software-adapter sizes);
# NO_BUNDLE=1; ROOF_MIB, CMP_SHAPES, CMP_FLAGS, TOPK_SHAPES, TOPK_FLAGS, KD_SHAPES, KD_FLAGS, TESTS override
# the defaults below.
set -u
cd "$(dirname "$0")/../.."
if [ "${1:-}" != prepare ]; then
  OUT=${OUT:?OUT must name the folder for the results}
  mkdir -p "$OUT"
fi
START=$SECONDS
DEADLINE_S=${DEADLINE_S:-290} # the whole script: under 5 minutes
STEP_CAP_S=${STEP_CAP_S:-60}  # each bench process

# The GPU kernel tests (step b); prepare caches their imports too.
D_TESTS="tests/kernels_topk_test.ts tests/kernels_topk_radix_test.ts tests/kernels_topk_select_test.ts
  tests/kernels_sparse_kd_test.ts tests/kernels_sparse_kd_divergence_test.ts tests/kernels_sampled_kd_test.ts
  tests/kernels_sample_test.ts tests/kernels_backends_test.ts tests/train_kd_loss_op_test.ts
  tests/gpu_runtime_test.ts"
if [ "${SMALL:-0}" = 1 ]; then # a software adapter: sizes and reps that finish in minutes
  D_ROOF_MIB="8,16,32"
  D_CMP_SHAPES="32x32000x64 4x131072x256"
  D_TOPK_SHAPES="32x32000x64"
  D_TOPK_FLAGS="--reps 2 --tfjs-reps 1 --tfjs-cpu-reps 0 --fit-ns 2,5,10 --tfjs-fit-ns 1,3"
  D_CMP_FLAGS="--reps 2 --fit-ns 2,5,10"
  D_KD_SHAPES="16x32000 8x50257"
  D_KD_FLAGS="--reps 2 --tfjs-reps 1 --modes topk,tail --fit-ns 2,5,10 --tfjs-fit-ns 1,3 --rows-in-flight 4"
else # the issue's goal shapes; tf-cpu skipped (a CPU baseline on a GPU box); tfjs by a short fit (2 and 8
  # calls, once each: tf.topk and the tfjs loss take 30-100 ms a call on an H200, so 10/50/200 twice would
  # cost minutes); our kernels by timestamps (else 10/50/200)
  D_ROOF_MIB="512,1024,2048"
  D_CMP_SHAPES="256x32000x64 4096x32000x64 1024x131072x256 4096x128256x64"
  D_TOPK_SHAPES="256x32000x64 4096x32000x64 1024x131072x256 4096x50257x64"
  D_TOPK_FLAGS="--reps 5 --tfjs-reps 1 --tfjs-cpu-reps 0 --tfjs-fit-ns 2,8"
  D_CMP_FLAGS="--reps 3"
  D_KD_SHAPES="1024x32000 4096x32000 1024x131072 4096x50257"
  D_KD_FLAGS="--reps 5 --tfjs-reps 1 --tfjs-fit-ns 2,8 --rows-in-flight 64"
fi
TESTS=${TESTS:-$D_TESTS}
ROOF_MIB=${ROOF_MIB:-$D_ROOF_MIB}
CMP_SHAPES=${CMP_SHAPES:-$D_CMP_SHAPES}
TOPK_SHAPES=${TOPK_SHAPES:-$D_TOPK_SHAPES}
TOPK_FLAGS=${TOPK_FLAGS:-$D_TOPK_FLAGS}
CMP_FLAGS=${CMP_FLAGS:-$D_CMP_FLAGS}
KD_SHAPES=${KD_SHAPES:-$D_KD_SHAPES}
KD_FLAGS=${KD_FLAGS:-$D_KD_FLAGS}

SUMMARY=""
T0=${EPOCHREALTIME//[!0-9]/} # microseconds
# stamp: copies stdin to stdout, each line prefixed with the seconds since the script started.
stamp() {
  local line now
  while IFS= read -r line || [ -n "$line" ]; do
    now=$((${EPOCHREALTIME//[!0-9]/} - T0))
    printf '[%4d.%ds] %s\n' $((now / 1000000)) $((now / 100000 % 10)) "$line"
  done
}
# step NAME CAP_S CMD...: runs CMD under timeout min(CAP_S, time left before the deadline), its output
# stamped; records its status in SUMMARY and $OUT/steps.tsv (name, rc or "skipped", seconds).
step() {
  local name=$1 cap=$2 left=$((DEADLINE_S - (SECONDS - START)))
  shift 2
  [ "$left" -lt "$cap" ] && cap=$left
  if [ "$cap" -le 5 ]; then
    SUMMARY+="$name: skipped (deadline)"$'\n'
    printf '%s\tskipped (deadline)\t0\n' "$name" >>"$OUT/steps.tsv"
    return
  fi
  echo "=== $name (timeout ${cap}s) at +$((SECONDS - START))s: $*"
  local t0=$SECONDS
  timeout -k 5 "$cap" "$@" 2>&1 | stamp
  local rc=${PIPESTATUS[0]}
  SUMMARY+="$name: rc=$rc in $((SECONDS - t0))s"$'\n'
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" >>"$OUT/steps.tsv"
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
    unxz_to .devbundle/deno_dir.tar.xz | tar -xf - -C "$tmp/deno_dir" & # both at once: ~2 s, not ~3
    unxz_to .devbundle/deno.xz >"$tmp/deno" && chmod +x "$tmp/deno"
    wait
    export DENO_DIR=$tmp/deno_dir DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 PATH=$tmp:$PATH
  fi
  # The Vulkan loader (Mesa's WSI) warns on stderr when XDG_RUNTIME_DIR is unset; the runtime sets its own,
  # the probes below run before it.
  [ -n "${XDG_RUNTIME_DIR:-}" ] || { export XDG_RUNTIME_DIR=$tmp/xdg && mkdir -p -m 700 "$XDG_RUNTIME_DIR"; }
  echo "deno: $(deno --version | head -1); DENO_DIR=${DENO_DIR:-default}; VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}" \
    "(loader and bundle unpacked at +$((SECONDS - START))s)"
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
  : >"$OUT/steps.tsv"

  echo "roofline: $ROOF_MIB MiB; compare: $CMP_SHAPES / $CMP_FLAGS; topk: $TOPK_SHAPES / $TOPK_FLAGS;" \
    "sparse-kd: $KD_SHAPES / $KD_FLAGS"
  local limits='const a = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
    const l = {}; for (const k in a.limits) l[k] = a.limits[k];
    const i = {}; for (const k in a.info) i[k] = a.info[k];
    console.log(JSON.stringify({ info: i, features: [...a.features].sort(), limits: l }, null, 2));'
  step adapter 30 bash -c "deno eval '$limits' > '$OUT/adapter.json' && cat '$OUT/adapter.json'"
  if ! grep -q '"timestamp-query"' "$OUT/adapter.json" 2>/dev/null; then
    # Kernels are then timed by wall fits over 10/50/200 dispatches: two repetitions, not 3-5, keep the
    # benches inside the deadline (a later --reps wins).
    echo "no timestamp-query on this adapter: wall-time fits, --reps 2"
    CMP_FLAGS+=" --reps 2" TOPK_FLAGS+=" --reps 2" KD_FLAGS+=" --reps 2"
  fi
  step roofline "$STEP_CAP_S" deno run -A --cached-only bench/roofline.ts --sizes-mib "$ROOF_MIB"
  if [ "${SKIP_TESTS:-0}" = 1 ]; then
    SUMMARY+="tests: skipped (SKIP_TESTS=1)"$'\n'
    printf 'tests\tskipped (SKIP_TESTS=1)\t0\n' >>"$OUT/steps.tsv"
  else
    # shellcheck disable=SC2086 # the list is meant to split
    step tests "${TEST_CAP_S:-150}" deno test -A --cached-only --no-check $TESTS
  fi
  # shellcheck disable=SC2086 # the flags are meant to split
  step "topk old vs new" "$STEP_CAP_S" deno run -A --cached-only bench/topk_compare.ts --shapes \
    "$(echo $CMP_SHAPES | tr ' ' ',')" $CMP_FLAGS
  local s
  for s in $TOPK_SHAPES; do
    # shellcheck disable=SC2086 # the flags are meant to split
    step "bench topk $s" "$STEP_CAP_S" deno run -A --cached-only tasks/bench.ts topk --shapes "$s" $TOPK_FLAGS
  done
  for s in $KD_SHAPES; do
    # shellcheck disable=SC2086
    step "bench sparse-kd $s" "$STEP_CAP_S" deno run -A --cached-only tasks/bench.ts sparse-kd --shapes "$s" $KD_FLAGS
  done

  mkdir -p "$tmp/results"
  find bench/results -maxdepth 1 -name '*.json' -newer "$marker" -exec cp {} "$tmp/results/" \; 2>/dev/null
  deno run -A --cached-only bench/device/summarize.ts "$tmp/results" "$OUT"
  echo "=== summary (total $((SECONDS - START))s)"
  printf '%s' "$SUMMARY"
  echo "results in \$OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
}

prepare() { # on the CPU machine: the loader debs and the Deno bundle this script carries
  [ "$(uname -m)" = x86_64 ] || { echo "prepare on an x86-64 machine: the device is one" >&2; return 1; }
  local d
  for d in .gl .devbundle; do # ignored, or they would travel twice and show up in commits
    git check-ignore -q "$d" || { echo "$d/ must be ignored by git (.gitignore or .git/info/exclude)" >&2; return 1; }
  done
  rm -rf .gl .devbundle && mkdir -p .gl .devbundle /tmp/amd64/partial
  local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
  apt-get "${o[@]}" -qq update || return 1
  (cd .gl && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2) || return 1
  local deno
  deno=$(npx -y deno@2.9.6 eval 'console.log(Deno.execPath())' | tail -1)
  xz -6 -T0 -c "$deno" >.devbundle/deno.xz
  local dir
  dir=$(mktemp -d)
  # shellcheck disable=SC2086 # the list is meant to split
  DENO_DIR=$dir npx -y deno@2.9.6 cache tasks/bench.ts bench/roofline.ts bench/topk_compare.ts \
    bench/device/summarize.ts $TESTS || return 1
  find "$dir/npm" -name '*.map' -delete
  tar -C "$dir" -cf - npm | xz -6 -T0 >.devbundle/deno_dir.tar.xz
  rm -rf "$dir"
  du -sh .gl .devbundle
}

if [ "${1:-}" = prepare ]; then
  prepare
  exit
fi
[ "${SKIP_GL_UNPACK:-0}" = 1 ] || ls .gl/*.deb >/dev/null 2>&1 || echo "no .gl/*.deb: carry .gl (see Prepare)" >&2
[ "${NO_BUNDLE:-0}" = 1 ] || [ -f .devbundle/deno.xz ] || {
  echo "no .devbundle/: run \`bash bench/device/run.sh prepare\` and carry .devbundle" | tee "$OUT/log.txt" >&2
  exit 1
}
main 2>&1 | tee "$OUT/log.txt"
