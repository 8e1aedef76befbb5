// Top-k per row with the full-vocabulary logsumexp, for real GPUs: one read of the row, radix select.
//
// The prelude defines: WG (threads per workgroup, 64, 128 or 256), WG4 = WG / 4, U (vec4 loads each thread
// has in flight per step), E = 4 * U, NT (temperatures), NT4 = ceil(NT / 4), CAP (candidate buffer entries,
// > k), CAPQ = ceil(CAP / 4), BPT = 256 / WG (histogram buckets per thread). NT is a bucket (the arrays'
// size): params.nt <= NT temperatures are used.
//
// Compile time on Mesa's OpenGL path (naga -> GLSL -> llvmpipe): naga zero-initializes every workgroup
// variable there with one store per array element in straight-line code, llvmpipe turns each store into
// masked per-lane code, and LLVM's coroutine lowering (llvmpipe's compute shaders are coroutines split at
// barriers) costs about the square of the function's basic blocks. So the workgroup arrays are vec4s (a
// quarter of the stores: four candidate keys or ids per vec4), one per-thread exchange array serves the
// reductions and the scan, and each entry point has one call site of `offer` and `compact` (Mesa inlines
// every call). docs/performance.md has the figures; tools/radix_compile_time.ts times each variant.
//
// Entry point `main`: workgroup g of a 2D grid (g = wg.y * nx + wg.x) reads split `g % split` of row
// `g / split` (a contiguous range of its vec4s; the first split also takes the unaligned head, the last the
// tail), once:
//   - per step each thread issues U independent vec4 loads, then folds them into its NaN / +Inf / finite
//     flags and its online logsumexp at every temperature (the tile's max first, one rescale of each
//     running sum per step, exp2 with log2(e)/T premultiplied);
//   - every element whose (key, ~id) is at or above the running threshold is appended to workgroup memory
//     (keys: order-preserving u32 images of the f32 values, -0 and +0 equal). When the buffer overflows,
//     an exact radix select (8-bit digits of the key, then of ~id) keeps the k best entries and raises the
//     threshold to the k-th; the elements that did not fit (still in registers) are offered again.
//   - at the end the threads' sums are combined; with split = 1 the k candidates are ranked by (value
//     descending, id ascending) and written as the final result, otherwise the workgroup writes a part:
//     its flags, max, sums relative to the max, and its best min(k, seen) candidates.
// Entry point `merge` (split > 1): one workgroup per row combines the row's parts (flags, logsumexp) and
// streams their candidates through the same threshold/radix-select buffer, then writes the final result.
//
// Final output (u32 words) for a dispatch of `rows` rows:
//   [ids: rows*k][values (f32 bits): rows*k][logsumexp (f32 bits): rows*nt][flags: rows]
// flags: 1 = a NaN, 2 = a +Infinity, 4 = a value above -Infinity (the host refuses rows with 1 or 2, or
// without 4). Part layout (u32 words, PS = 2 + nt + 2k per part, parts of a row adjacent):
//   [flags][max (f32 bits)][sum_t relative to max: nt][keys: k (0 = none)][ids: k]

struct Params {
  vocab: u32,
  k: u32,
  rows: u32,
  in_off: u32, // element offset of this dispatch's row 0 inside the bound logits range
  split: u32, // workgroups (parts) per row
  seg4: u32, // vec4s per split
  nx: u32, // workgroups along x of the 2D grid
  partial: u32, // main: 1 = write parts, 0 = write the final result
  nt: u32, // temperatures (<= NT)
  pad0: u32,
  pad1: u32,
  pad2: u32,
  c: array<vec4<f32>, NT4>, // log2(e) / T
  inv_t: array<vec4<f32>, NT4>, // 1 / T
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
// The same range as `logits`, 16 bytes at a time (main only).
@group(0) @binding(2) var<storage, read> logits4: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;
@group(0) @binding(4) var<storage, read> parts: array<u32>; // merge only

const NEG_MAX: f32 = -3.4028234663852886e38;
const NEG_INF_BITS: u32 = 0xff800000u;
const POS_INF_BITS: u32 = 0x7f800000u;
const LN2: f32 = 0.6931471805599453;

// The candidate buffer: entry j is (key, id) = (ck4[j / 4][j % 4], ci4[j / 4][j % 4]) (consecutive entries in
// consecutive words, as in plain arrays).
var<workgroup> ck4: array<vec4<u32>, CAPQ>;
var<workgroup> ci4: array<vec4<u32>, CAPQ>;
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> count: atomic<u32>;
var<workgroup> wflags: atomic<u32>;
// One word per thread (f32 bits in the reductions, u32 in the scan), four to a vec4.
var<workgroup> xch: array<vec4<u32>, WG4>;
var<workgroup> red16: array<f32, 16>;
var<workgroup> sh_u: array<u32, 4>;
var<workgroup> sel: array<u32, 5>;
var<workgroup> sh_f: f32;

var<private> lid: u32;
// The threshold (key, ~id): an element below it is beaten by k entries of the buffer.
var<private> t_key: u32;
var<private> t_rid: u32;
// This thread's offered elements and which of them still wait for a slot.
var<private> pk: array<u32, E>;
var<private> pi: array<u32, E>;
var<private> pending: u32;
// Online logsumexp: running max of the finite values and sum of exp2((x - m) * c_t) per temperature.
var<private> m: f32;
var<private> s: array<f32, NT>;
var<private> fl: u32;

fn cand_key(j: u32) -> u32 {
  return ck4[j >> 2u][j & 3u];
}

fn cand_id(j: u32) -> u32 {
  return ci4[j >> 2u][j & 3u];
}

fn cand_put(j: u32, key: u32, id: u32) {
  ck4[j >> 2u][j & 3u] = key;
  ci4[j >> 2u][j & 3u] = id;
}

fn xch_get(i: u32) -> u32 {
  return xch[i >> 2u][i & 3u];
}

fn xch_put(i: u32, v: u32) {
  xch[i >> 2u][i & 3u] = v;
}

// Order-preserving key: a larger float has a larger key; -0 and +0 share one key.
fn key_of(bits: u32) -> u32 {
  let b = select(bits, 0u, bits == 0x80000000u);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn c_of(t: u32) -> f32 {
  return params.c[t / 4u][t % 4u];
}

fn inv_t_of(t: u32) -> f32 {
  return params.inv_t[t / 4u][t % 4u];
}

// (key, ~id) at or above the threshold: larger key first, then lower id.
fn keep(key: u32, id: u32) -> bool {
  return key > t_key || (key == t_key && ~id >= t_rid);
}

// The max (is_max) or the sum of `v` over the workgroup, the same in every thread.
fn wg_reduce(v: f32, is_max: bool) -> f32 {
  xch_put(lid, bitcast<u32>(v));
  workgroupBarrier();
  if (lid < 16u) {
    var a = bitcast<f32>(xch_get(lid * (WG / 16u)));
    for (var j = 1u; j < WG / 16u; j++) {
      let b = bitcast<f32>(xch_get(lid * (WG / 16u) + j));
      a = select(a + b, max(a, b), is_max);
    }
    red16[lid] = a;
  }
  workgroupBarrier();
  if (lid == 0u) {
    var a = red16[0];
    for (var j = 1u; j < 16u; j++) {
      a = select(a + red16[j], max(a, red16[j]), is_max);
    }
    sh_f = a;
  }
  return workgroupUniformLoad(&sh_f);
}

// Exact selection over the n > k buffer entries: an 8-bit radix select of the k-th best (key, ~id) finds
// the shortest digit prefix that exactly k entries reach; they are kept (in any order, moved to the front
// in place), the rest dropped, and the threshold becomes that prefix. Ends with count = k.
fn compact(n: u32) {
  // The selection state lives in workgroup memory: sel = [key prefix, ~id prefix, key mask, ~id mask,
  // entries still needed within the prefix], set by thread 0 and then by the thread that finds the digit.
  if (lid == 0u) {
    sel = array<u32, 5>(0u, 0u, 0u, 0u, params.k);
  }
  for (var d = 0u; d < 8u; d++) {
    for (var j = lid; j < 256u; j += WG) {
      atomicStore(&hist[j], 0u);
    }
    workgroupBarrier();
    let on_key = d < 4u;
    let shift = 24u - 8u * (d % 4u);
    let pfx_k = sel[0];
    let pfx_r = sel[1];
    let msk_k = sel[2];
    let msk_r = sel[3];
    for (var j = lid; j < n; j += WG) {
      let key = cand_key(j);
      let rid = ~cand_id(j);
      if ((key & msk_k) == pfx_k && (rid & msk_r) == pfx_r) {
        atomicAdd(&hist[(select(rid, key, on_key) >> shift) & 255u], 1u);
      }
    }
    // The digit: the highest bucket b whose count, with the counts of the buckets above it, reaches the
    // entries still needed. A parallel suffix scan (no thread walks the 256 buckets alone: on llvmpipe
    // every loop iteration of a workgroup's 8-lane group counts against one budget of 65,535).
    let remaining = sel[4];
    workgroupBarrier();
    var local = 0u;
    for (var i = 0u; i < BPT; i++) {
      local += atomicLoad(&hist[lid * BPT + i]);
    }
    xch_put(lid, local);
    workgroupBarrier();
    for (var o = 1u; o < WG; o <<= 1u) {
      let v = select(0u, xch_get(min(lid + o, WG - 1u)), lid + o < WG);
      workgroupBarrier();
      xch_put(lid, xch_get(lid) + v);
      workgroupBarrier();
    }
    var above = xch_get(lid) - local; // entries in the buckets of the threads above this one
    for (var i = 0u; i < BPT; i++) {
      let b = lid * BPT + BPT - 1u - i;
      let c = atomicLoad(&hist[b]);
      if (above < remaining && above + c >= remaining) {
        if (on_key) {
          sel[0] = pfx_k | (b << shift);
          sel[2] = msk_k | (255u << shift);
        } else {
          sel[1] = pfx_r | (b << shift);
          sel[3] = msk_r | (255u << shift);
        }
        sel[4] = remaining - above;
        sh_u[0] = select(0u, 1u, c == remaining - above);
      }
      above += c;
    }
    if (workgroupUniformLoad(&sh_u[0]) != 0u) {
      break;
    }
  }
  // The k kept entries move to the front in rounds of 4 * WG: round q reads entries [4q * WG, 4(q + 1) * WG)
  // and then writes its kept ones to slots below the count, which stays below 4(q + 1) * WG, so only
  // entries already read are overwritten.
  t_key = sel[0];
  t_rid = sel[1];
  if (lid == 0u) {
    atomicStore(&count, 0u);
  }
  let rounds = (n + 4u * WG - 1u) / (4u * WG);
  for (var q = 0u; q < rounds; q++) {
    var key = vec4<u32>(0u);
    var id = vec4<u32>(0u);
    var kept = vec4<bool>(false);
    for (var r = 0u; r < 4u; r++) {
      let j = (4u * q + r) * WG + lid;
      if (j < n) {
        key[r] = cand_key(j);
        id[r] = cand_id(j);
        kept[r] = keep(key[r], id[r]);
      }
    }
    workgroupBarrier();
    for (var r = 0u; r < 4u; r++) {
      if (kept[r]) {
        cand_put(atomicAdd(&count, 1u), key[r], id[r]); // slot < k: exactly k entries are kept
      }
    }
    workgroupBarrier();
  }
}

// Appends this thread's pending elements that are still at or above the threshold; while the buffer holds
// more than `limit` entries (CAP; k at the end), compacts it to k and offers the rest again. Returns the
// number of buffered entries (<= limit).
fn offer(limit: u32) -> u32 {
  var n = 0u;
  loop {
    if (pending != 0u) {
      for (var e = 0u; e < E; e++) {
        let bit = 1u << e;
        if ((pending & bit) != 0u) {
          if (keep(pk[e], pi[e])) {
            let slot = atomicAdd(&count, 1u);
            if (slot < CAP) {
              cand_put(slot, pk[e], pi[e]);
              pending &= ~bit;
            }
          } else {
            pending &= ~bit;
          }
        }
      }
    }
    workgroupBarrier();
    if (lid == 0u) {
      sh_u[3] = atomicLoad(&count);
    }
    n = workgroupUniformLoad(&sh_u[3]);
    if (n <= limit) {
      break;
    }
    compact(min(n, CAP));
  }
  return n;
}

// Folds up to U vec4s of row values into the flags and the online logsumexp, and makes the elements at or
// above the threshold pending.
fn take(bits: array<vec4<u32>, U>, id0: array<u32, U>, inside: array<vec4<bool>, U>) {
  var xs: array<vec4<f32>, U>;
  var fin: array<vec4<bool>, U>;
  var tile_max = NEG_MAX;
  var any_fin = false;
  for (var u = 0u; u < U; u++) {
    let b = bits[u];
    let a = b & vec4<u32>(0x7fffffffu);
    let nan = inside[u] & (a > vec4<u32>(POS_INF_BITS));
    let pinf = inside[u] & (b == vec4<u32>(POS_INF_BITS));
    fin[u] = inside[u] & (a < vec4<u32>(POS_INF_BITS));
    fl |= select(0u, 1u, any(nan)) | select(0u, 2u, any(pinf)) | select(0u, 4u, any(fin[u] | pinf));
    any_fin = any_fin || any(fin[u]);
    xs[u] = select(vec4<f32>(NEG_MAX), bitcast<vec4<f32>>(b), fin[u]);
    tile_max = max(tile_max, max(max(xs[u].x, xs[u].y), max(xs[u].z, xs[u].w)));
  }
  if (any_fin) {
    let m_new = max(m, tile_max);
    for (var t = 0u; t < params.nt; t++) {
      let ct = c_of(t);
      var acc = s[t] * exp2((m - m_new) * ct);
      for (var u = 0u; u < U; u++) {
        let terms = select(vec4<f32>(0.0), exp2((xs[u] - vec4<f32>(m_new)) * ct), fin[u]);
        acc += dot(terms, vec4<f32>(1.0));
      }
      s[t] = acc;
    }
    m = m_new;
  }
  pending = 0u;
  for (var u = 0u; u < U; u++) {
    for (var c = 0u; c < 4u; c++) {
      if (inside[u][c]) {
        let e = 4u * u + c;
        let key = key_of(bits[u][c]);
        let id = id0[u] + c;
        pk[e] = key;
        pi[e] = id;
        if (keep(key, id)) {
          pending |= 1u << e;
        }
      }
    }
  }
}

// Four scalar loads from the row (its unaligned head or tail): values at index .. index+3 below `end`.
fn load4(base: u32, index: u32, end: u32) -> vec4<u32> {
  var v = vec4<u32>(0u);
  for (var c = 0u; c < 4u; c++) {
    if (index + c < end) {
      v[c] = bitcast<u32>(logits[base + index + c]);
    }
  }
  return v;
}

fn init_state() {
  t_key = 0u;
  t_rid = 0u;
  pending = 0u;
  m = NEG_MAX;
  for (var t = 0u; t < params.nt; t++) {
    s[t] = 0.0;
  }
  fl = 0u;
  if (lid == 0u) {
    atomicStore(&count, 0u);
    atomicStore(&wflags, 0u);
  }
  workgroupBarrier();
}

// 1 where (kj, ij) (if `entry`: a buffer entry) ranks before (ko, io): a larger key, or the same and a lower id.
fn beats(kj: u32, ij: u32, entry: bool, ko: vec4<u32>, io: vec4<u32>) -> vec4<u32> {
  let k = vec4<u32>(kj);
  let b = (k > ko) | ((k == ko) & (vec4<u32>(ij) < io));
  return select(vec4<u32>(0u), vec4<u32>(1u), vec4<bool>(entry) & b);
}

// Writes the row's result: the n buffered candidates ranked by (value descending, id ascending), each
// thread ranking four at a time against all of them; values are read back from the row (keeps -0).
fn write_sorted(row: u32, n: u32) {
  let k = params.k;
  let rows = params.rows;
  let base = params.in_off + row * params.vocab;
  for (var c0 = 4u * lid; c0 < n; c0 += 4u * WG) {
    let valid = vec4<u32>(c0) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(n);
    var ko = vec4<u32>(0u);
    var io = vec4<u32>(0u);
    for (var c = 0u; c < 4u; c++) {
      if (valid[c]) {
        ko[c] = cand_key(c0 + c);
        io[c] = cand_id(c0 + c);
      }
    }
    // Four entries per step (those at n and above are not entries).
    var rank = vec4<u32>(0u);
    for (var j4 = 0u; 4u * j4 < n; j4++) {
      let kv = ck4[j4];
      let iv = ci4[j4];
      let j = 4u * j4;
      rank += beats(kv.x, iv.x, j < n, ko, io) + beats(kv.y, iv.y, j + 1u < n, ko, io);
      rank += beats(kv.z, iv.z, j + 2u < n, ko, io) + beats(kv.w, iv.w, j + 3u < n, ko, io);
    }
    for (var c = 0u; c < 4u; c++) {
      if (valid[c] && rank[c] < k) {
        out[row * k + rank[c]] = io[c];
        out[rows * k + row * k + rank[c]] = bitcast<u32>(logits[base + io[c]]);
      }
    }
  }
}

// Thread 0: the final logsumexp at temperature t from the row's max and total rescaled sum.
fn final_lse(row: u32, t: u32, big_m: f32, total: f32) {
  var lse = big_m * inv_t_of(t) + log2(total) * LN2;
  if (total == 0.0) {
    lse = bitcast<f32>(NEG_INF_BITS);
  }
  out[2u * params.rows * params.k + row * params.nt + t] = bitcast<u32>(lse);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) local: u32) {
  lid = local;
  let split = params.split;
  let g = wg.y * params.nx + wg.x;
  if (g >= params.rows * split) {
    return;
  }
  let row = g / split;
  let sp = g % split;
  let vocab = params.vocab;
  let k = params.k;
  let base = params.in_off + row * vocab;
  // The row: an unaligned head (0..3 values), nb whole vec4s, a tail (0..3 values).
  let head = min(vocab, (4u - base % 4u) % 4u);
  let nb = (vocab - head) / 4u;
  let body4 = (base + head) / 4u;
  let tail0 = head + 4u * nb;
  let seg0 = min(nb, sp * params.seg4);
  let seg1 = min(nb, seg0 + params.seg4);
  let lane = vec4<u32>(0u, 1u, 2u, 3u);
  init_state();

  var bits: array<vec4<u32>, U>;
  var id0: array<u32, U>;
  var inside: array<vec4<bool>, U>;
  for (var u = 0u; u < U; u++) {
    inside[u] = vec4<bool>(false);
  }
  // Step 0 offers the row's unaligned head and tail, steps 1..steps its vec4s, and step steps + 1 (nothing
  // new) brings the buffer down to the best k: one call site of offer (and compact) in the shader.
  let steps = (seg1 - seg0 + WG * U - 1u) / (WG * U);
  var n = 0u;
  for (var st = 0u; st <= steps + 1u; st++) {
    var limit = CAP;
    if (st == 0u) {
      if (sp == 0u && lid == 0u) {
        bits[0] = load4(base, 0u, head);
        id0[0] = 0u;
        inside[0] = lane < vec4<u32>(head);
      }
      if (sp == split - 1u && lid == 1u) {
        bits[0] = load4(base, tail0, vocab);
        id0[0] = tail0;
        inside[0] = vec4<u32>(tail0) + lane < vec4<u32>(vocab);
      }
    } else if (st <= steps) {
      let b0 = seg0 + (st - 1u) * WG * U + lid;
      for (var u = 0u; u < U; u++) {
        let j = b0 + u * WG;
        bits[u] = logits4[body4 + min(j, seg1 - 1u)];
        id0[u] = head + 4u * j;
        inside[u] = vec4<bool>(j < seg1);
      }
    } else {
      limit = k;
    }
    if (st <= steps) {
      take(bits, id0, inside);
    } else {
      pending = 0u;
    }
    n = offer(limit);
  }

  // Flags, max and sums over the workgroup.
  atomicOr(&wflags, fl);
  let big_m = wg_reduce(m, true);
  let flags = atomicLoad(&wflags); // (every thread's atomicOr is behind wg_reduce's barriers)
  let nt = params.nt;
  let pb = g * (2u + nt + 2u * k);
  for (var t = 0u; t < params.nt; t++) {
    let v = select(0.0, s[t] * exp2((m - big_m) * c_of(t)), s[t] > 0.0);
    let total = wg_reduce(v, false);
    if (lid == 0u) {
      if (params.partial != 0u) {
        out[pb + 2u + t] = bitcast<u32>(total);
      } else {
        final_lse(row, t, big_m, total);
      }
    }
  }
  if (params.partial != 0u) {
    if (lid == 0u) {
      out[pb] = flags;
      out[pb + 1u] = bitcast<u32>(big_m);
    }
    for (var j = lid; j < k; j += WG) {
      out[pb + 2u + nt + j] = select(0u, cand_key(j), j < n);
      out[pb + 2u + nt + k + j] = select(0xffffffffu, cand_id(j), j < n);
    }
  } else {
    if (lid == 0u) {
      out[2u * params.rows * k + params.rows * params.nt + row] = flags;
    }
    write_sorted(row, n);
  }
}

@compute @workgroup_size(WG)
fn merge(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) local: u32) {
  lid = local;
  let row = wg.y * params.nx + wg.x;
  if (row >= params.rows) {
    return;
  }
  let split = params.split;
  let k = params.k;
  let nt = params.nt;
  let ps = 2u + nt + 2u * k;
  let pb = row * split * ps;
  init_state();

  // Flags and logsumexp of the parts (split <= WG: part p is thread p's).
  var mp = NEG_MAX;
  if (lid < split) {
    atomicOr(&wflags, parts[pb + lid * ps]);
    mp = bitcast<f32>(parts[pb + lid * ps + 1u]);
  }
  let big_m = wg_reduce(mp, true);
  let flags = atomicLoad(&wflags);
  for (var t = 0u; t < params.nt; t++) {
    var v = 0.0;
    if (lid < split) {
      let sp = bitcast<f32>(parts[pb + lid * ps + 2u + t]);
      v = select(0.0, sp * exp2((mp - big_m) * c_of(t)), sp > 0.0);
    }
    let total = wg_reduce(v, false);
    if (lid == 0u) {
      final_lse(row, t, big_m, total);
    }
  }
  if (lid == 0u) {
    out[2u * params.rows * k + params.rows * params.nt + row] = flags;
  }

  // The parts' candidates, streamed through the buffer like the row's values; the last step (nothing new)
  // brings the buffer down to the best k.
  let total = split * k;
  let steps = (total + WG * E - 1u) / (WG * E);
  var n = 0u;
  for (var st = 0u; st <= steps; st++) {
    pending = 0u;
    var limit = CAP;
    if (st < steps) {
      for (var e = 0u; e < E; e++) {
        let x = st * WG * E + e * WG + lid;
        if (x < total) {
          let at = pb + (x / k) * ps + 2u + nt + x % k;
          let key = parts[at];
          let id = parts[at + k];
          pk[e] = key;
          pi[e] = id;
          if (key != 0u && keep(key, id)) {
            pending |= 1u << e;
          }
        }
      }
    } else {
      limit = k;
    }
    n = offer(limit);
  }
  write_sorted(row, n);
}
