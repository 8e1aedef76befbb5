// Sparse-KD loss: one fused forward and backward pass per row (docs/losses.md has the mathematics).
//
// One workgroup per row. Pass 1 streams the student row once with an online max/sum (logsumexp of s/T
// and, when the CE term is on, of s); in mode `tail` it skips the teacher's ids S so that it yields the
// logsumexp over the complement directly (no cancellation when Q_S is close to 1). The K ids of S are
// then handled by indexing. Pass 2 writes the gradient; the K entries of S (and the label) are then fixed
// up in place. A row of at most CN·WG elements (32,768 floats as vec4, 32,768 as f32) is read once: pass 1
// keeps each thread's CN elements in registers (a fully unrolled loop) and pass 2 takes them from there.
// A longer row is read a second time by pass 2. Masked rows write zeros and read nothing.
//
// Mode 3 (sampled) reads, in place of the teacher's logits, one importance coefficient c_i = h_i·w_i/N per slot
// (formed on the host in float64), and in place of T·Lz(T) the row's Σ c_i·log p_T(i): its KD is the
// estimate Σ c_i (log p_T(i) - log q_i) and its gradient in u is C·q - c, C = Σ c_i.
//
// The divergence (params.divergence: 0 forward KL, 1 reverse KL, 2 generalized JSD with params.beta) is a
// uniform, not a compiled variant; reverse and JSD run in modes renorm and tail only (the host checks).
//
// Mode tail's membership test (is id j one of the K teacher ids S?) is bounded: the K ids are sorted in
// workgroup memory (a bitonic sort over the next power of two n ≥ K, padded with 0xffffffff) and looked up by
// a binary search of log2(n) steps, behind a 16,384-bit hashed bitmap that skips most ids. Only K > KSORT
// falls back to a linear scan of the ids in global memory (the host refuses that on software adapters when it
// would exceed llvmpipe's loop budget: `sparseKdLoopIterations` in src/kernels/sparse_kd.ts counts the loops).
//
// The host prepends: const WG: u32 (a power of two), const MODE: u32 (0 topk, 1 renorm, 2 tail, 3 sampled),
// const CN: u32 (elements of a row each thread keeps for the one-read path: 128 floats, as 32 vec4 or 128 f32),
// const KSORT: u32 (mode tail: the most ids sorted in workgroup memory, a power of two; 1 in other modes),
// and one of
// sparse_kd_vec4.wgsl (vocab % 4 == 0: rows move as vec4) or sparse_kd_scalar.wgsl, which define the
// element type LT of `logits` and `grad`, its width VW, and the helpers hmax, hsum, ld, ld_grad, st_grad,
// drop_s.

const NBITS: u32 = 16384u; // tail mode: membership bitmap of S, hashed by id % NBITS
const NWORDS: u32 = 512u;
const NO_ID: u32 = 0xffffffffu; // pads the sorted ids up to a power of two (above every id < vocab)
const BIG_NEG: f32 = -3.0e38;
const TAIL_FLOOR: f32 = 9.536743e-7; // 2^-20: reverse KL floors the teacher's tail mass here (docs/losses.md)
const LOG_TAIL_FLOOR: f32 = -13.862944; // log(2^-20)

// The host packs this struct from the one field list in src/kernels/sparse_kd.ts (tests check they match).
// A dispatch covers rows [0, rows) of a chunk; the *_off fields are where the chunk's row 0 starts inside
// each binding (the bindings start at offsets rounded down to the device's alignment).
struct Params {
  rows: u32,
  vocab: u32,
  k: u32,
  nx: u32,
  inv_t: f32,
  t: f32,
  alpha: f32,
  need_ce: u32,
  l_off: u32, // elements, in logits and grad (a multiple of VW)
  k_off: u32, // elements, in ids and tvals
  r_off: u32, // records, in rowinfo
  o_off: u32, // elements, in loss
  check_ids: u32, // 1: check each row's teacher ids (range, distinct); a bad row gets a NaN loss and gradient
  divergence: u32, // 0 forward KL(P‖Q), 1 reverse KL(Q‖P), 2 JSD_β (modes renorm and tail only)
  beta: f32, // JSD: the teacher's weight in the mixture M = βP + (1 - β)Q, in (0, 1)
  beta_c: f32, // 1 - β, computed by the host in float64 (both keep float32's relative precision near 0 and 1)
}

struct RowInfo {
  label: i32,
  tlz_hi: f32, // T·Lz(T) = tlz_hi + tlz_lo (tail mode); sampled: Σ c_i·log p_T(i) = tlz_hi + tlz_lo
  tlz_lo: f32,
  scale: f32,
  on: u32,
}

@group(0) @binding(0) var<storage, read> logits: array<LT>;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> tvals: array<f32>;
@group(0) @binding(3) var<storage, read> rowinfo: array<RowInfo>;
@group(0) @binding(4) var<storage, read_write> grad: array<LT>;
@group(0) @binding(5) var<storage, read_write> loss: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

var<workgroup> red_m: array<f32, WG>;
var<workgroup> red_a: array<f32, WG>;
var<workgroup> red_b: array<f32, WG>;
var<workgroup> bitmap: array<atomic<u32>, NWORDS>;
var<workgroup> ids_sorted: array<u32, KSORT>; // tail mode, K ≤ KSORT: the ids of S, ascending
var<workgroup> flag: u32;
var<workgroup> bad_ids: u32;

// Online logsumexp state (m, a, b): m the running max of x, a = Σ exp((x - m)/T), b = Σ exp(x - m).
fn lse_combine(x: vec3<f32>, y: vec3<f32>) -> vec3<f32> {
  let m = max(x.x, y.x);
  let it = params.inv_t;
  return vec3<f32>(
    m,
    x.y * exp((x.x - m) * it) + y.y * exp((y.x - m) * it),
    x.z * exp(x.x - m) + y.z * exp(y.x - m),
  );
}

fn lse_push(st: vec3<f32>, x: f32, need_ce: bool) -> vec3<f32> {
  let it = params.inv_t;
  if (x > st.x) {
    var b = 0.0;
    if (need_ce) {
      b = st.z * exp(st.x - x) + 1.0;
    }
    return vec3<f32>(x, st.y * exp((st.x - x) * it) + 1.0, b);
  }
  var b = st.z;
  if (need_ce) {
    b = b + exp(x - st.x);
  }
  return vec3<f32>(st.x, st.y + exp((x - st.x) * it), b);
}

fn reduce_lse(tid: u32, s: vec3<f32>) -> vec3<f32> {
  red_m[tid] = s.x;
  red_a[tid] = s.y;
  red_b[tid] = s.z;
  workgroupBarrier();
  for (var step = WG / 2u; step > 0u; step = step / 2u) {
    if (tid < step) {
      let o = lse_combine(
        vec3<f32>(red_m[tid], red_a[tid], red_b[tid]),
        vec3<f32>(red_m[tid + step], red_a[tid + step], red_b[tid + step]),
      );
      red_m[tid] = o.x;
      red_a[tid] = o.y;
      red_b[tid] = o.z;
    }
    workgroupBarrier();
  }
  let r = vec3<f32>(red_m[0], red_a[0], red_b[0]);
  workgroupBarrier();
  return r;
}

fn reduce_sum(tid: u32, x: f32) -> f32 {
  red_a[tid] = x;
  workgroupBarrier();
  for (var step = WG / 2u; step > 0u; step = step / 2u) {
    if (tid < step) {
      red_a[tid] = red_a[tid] + red_a[tid + step];
    }
    workgroupBarrier();
  }
  let r = red_a[0];
  workgroupBarrier();
  return r;
}

// 2·atanh(y) = log((1 + y)/(1 - y)) for |y| <= 1/3, by its series (error below 1e-9 relative).
fn log_series(y: f32) -> f32 {
  let y2 = y * y;
  return 2.0 * y * (1.0 + y2 * (1.0 / 3.0 + y2 * (1.0 / 5.0 + y2 * (1.0 / 7.0 + y2 * (1.0 / 9.0 + y2 * (1.0 / 11.0 +
    y2 * (1.0 / 13.0 + y2 * (1.0 / 15.0 + y2 * (1.0 / 17.0)))))))));
}

// log(x), accurate to a few ulps also in [0.5, 2], where GPU log() may be off by 2^-21 in absolute terms.
fn log_acc(x: f32) -> f32 {
  if (x > 0.5 && x < 2.0) {
    return log_series((x - 1.0) / (x + 1.0));
  }
  return log(x);
}

// log of a sum of exponentials; an empty sum (tail mode with K = V) gives BIG_NEG rather than log(0),
// which WGSL leaves indeterminate.
fn log_sum(x: f32) -> f32 {
  if (x > 0.0) {
    return log_acc(x);
  }
  return BIG_NEG;
}

fn log_add_exp(a: f32, b: f32) -> f32 {
  let m = max(a, b); // b (the logsumexp over S) is always finite here
  return m + log_acc(exp(a - m) + exp(b - m));
}

// exp(x) - 1 without cancellation near 0 (WGSL has no expm1).
fn expm1(x: f32) -> f32 {
  if (abs(x) < 0.5) {
    return x * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0 + x * (1.0 / 720.0 +
      x * (1.0 / 5040.0 + x * (1.0 / 40320.0))))))));
  }
  return exp(x) - 1.0;
}

// log((1 - a) + a·exp(x)) for a in (0, 1), given la = log(a) and l1a = log(1 - a): log1p(a·expm1(x)) near
// x = 0 (no cancellation when the two distributions are close), else a logaddexp (no overflow for large |x|).
fn log_mix(x: f32, a: f32, la: f32, l1a: f32) -> f32 {
  if (abs(x) < 1.0) {
    let y = a * expm1(x);
    if (abs(y) < 0.5) {
      return log1p_acc(y);
    }
  }
  let q = la + x;
  return max(l1a, q) + log1p_acc(exp(-abs(l1a - q)));
}

// log(1 + e) for e > -1/2, without forming 1 + e when |e| is small.
fn log1p_acc(e: f32) -> f32 {
  if (abs(e) < 0.5) {
    return log_series(e / (2.0 + e));
  }
  return log_acc(1.0 + e);
}

// One bucket b of reverse KL or JSD from lq = log Q_b and d = log(Q_b/P_b) (docs/losses.md): returns (the
// bucket's term of the divergence, λ_b), where the gradient in u of an id j of bucket b is
// c·q_j·(λ_b - Σ_b' Q_b' λ_b'). lb = log β, l1b = log(1 - β).
fn div_bucket(lq: f32, d: f32, lb: f32, l1b: f32) -> vec2<f32> {
  let lp = lq - d;
  if (params.divergence == 1u) {
    // Reverse: Q log(Q/P) - Q + P = P·φ(d) (the -Q + P sum to 0 over the buckets), φ(d) = d·e^d - expm1(d)
    // by its series near d = 0, so that close distributions lose no digits.
    if (abs(d) < 0.5) {
      return vec2<f32>(exp(lp) * phi_series(d), d);
    }
    return vec2<f32>(exp(lq) * (d - 1.0) + exp(lp), d);
  }
  // JSD: β P log(P/M) + (1 - β) Q log(Q/M), with log(P/M) = -log(β + (1 - β)e^d) and
  // log(Q/M) = -log((1 - β) + β e^-d).
  let b = params.beta;
  let bc = params.beta_c; // 1 - β
  let lqm = -log_mix(-d, b, lb, l1b);
  if (abs(d) < 0.1) {
    // = P·((1 - β)·φ(d) - h((1 - β)·expm1(d))) = Q·(β·φ(-d) - h(β·expm1(-d))), h(m) = (1 + m)·log1p(m) - m:
    // two O(d²) terms where the direct form subtracts two O(d) ones. Of the two, the one whose weight (1 - β
    // or β) is the larger: their difference is then at least half of either.
    if (b < 0.5) {
      return vec2<f32>(exp(lq) * (b * phi_series(-d) - h_series(b * expm1(-d))), lqm);
    }
    return vec2<f32>(exp(lp) * (bc * phi_series(d) - h_series(bc * expm1(d))), lqm);
  }
  let lpm = -log_mix(d, bc, l1b, lb);
  return vec2<f32>(b * exp(lp) * lpm + bc * exp(lq) * lqm, lqm);
}

// h(m) = (1 + m)·log1p(m) - m = m²/2 - m³/6 + m⁴/12 - …, for |m| < 0.11 (error below 1e-8 relative).
fn h_series(m: f32) -> f32 {
  return m * m * (0.5 + m * (-1.0 / 6.0 + m * (1.0 / 12.0 + m * (-1.0 / 20.0 + m * (1.0 / 30.0 +
    m * (-1.0 / 42.0 + m * (1.0 / 56.0)))))));
}

// φ(d) = d·e^d - expm1(d) = d²/2 + d³/3 + d⁴/8 + … (n-1)dⁿ/n!, for |d| < 1/2 (error below 1e-8 relative).
fn phi_series(d: f32) -> f32 {
  return d * d * (0.5 + d * (1.0 / 3.0 + d * (0.125 + d * (1.0 / 30.0 + d * (1.0 / 144.0 + d * (1.0 / 840.0 +
    d * (1.0 / 5760.0 + d * (1.0 / 45360.0))))))));
}

// Pass 1's step: element x of the row (already without S in mode tail) into the online state (m, a, b).
fn push_elem(st: vec3<f32>, x: LT, need_ce: bool) -> vec3<f32> {
  let it = params.inv_t;
  var o = st;
  let xm = hmax(x);
  if (xm > BIG_NEG) { // (an element entirely in S adds nothing)
    if (xm > o.x) {
      o.y = o.y * exp((o.x - xm) * it);
      if (need_ce) {
        o.z = o.z * exp(o.x - xm);
      }
      o.x = xm;
    }
    o.y = o.y + hsum(exp((x - o.x) * it));
    if (need_ce) {
      o.z = o.z + hsum(exp(x - o.x));
    }
  }
  return o;
}

// What pass 2 needs besides the element: the gradient's scales and the row's log-normalizers.
struct GradConst {
  ckd: f32,
  cce: f32,
  m_ref: f32,
  sh_all: f32,
  sh1_all: f32,
  tail_factor: f32,
}

// Pass 2's gradient of element x off S (the entries of S and the label are rewritten afterwards).
fn grad_elem(x: LT, g: GradConst, need_ce: bool) -> LT {
  let du = (x - g.m_ref) * params.inv_t;
  var o = LT(0.0);
  if (MODE == 0u || MODE == 3u) { // (mode sampled: ckd already holds ckd·C)
    o = g.ckd * exp(du - g.sh_all);
  } else if (MODE == 2u) {
    o = (g.ckd * g.tail_factor) * exp(du - g.sh_all);
  }
  if (need_ce) {
    o = o + g.cce * exp((x - g.m_ref) - g.sh1_all);
  }
  return o;
}

// The padded size of the sorted ids: the least power of two n ≥ k (k ≥ 1), and log2(n).
fn sort_log2(k: u32) -> u32 {
  return 32u - countLeadingZeros(k - 1u);
}

// Sorts the row's K ≤ KSORT ids into ids_sorted (ascending, padded with NO_ID up to n = 2^sort_log2(K)): a
// bitonic sort, log2(n)·(log2(n) + 1)/2 stages of n/2 compare-exchanges shared by the WG threads. Called in
// uniform control flow (it has barriers).
fn sort_ids(tid: u32, kb: u32, k: u32) {
  let n = 1u << sort_log2(k);
  for (var i = tid; i < n; i = i + WG) {
    ids_sorted[i] = select(NO_ID, ids[kb + min(i, k - 1u)], i < k);
  }
  workgroupBarrier();
  for (var size = 2u; size <= n; size = size << 1u) {
    for (var stride = size >> 1u; stride > 0u; stride = stride >> 1u) {
      for (var t = tid; t < n / 2u; t = t + WG) {
        let lo = 2u * t - (t & (stride - 1u)); // the pair (lo, lo + stride), lo's bit `stride` clear
        let a = ids_sorted[lo];
        let b = ids_sorted[lo + stride];
        if ((a > b) == ((lo & size) == 0u)) { // ascending blocks of `size` where lo's bit `size` is clear
          ids_sorted[lo] = b;
          ids_sorted[lo + stride] = a;
        }
      }
      workgroupBarrier();
    }
  }
}

// The index of the last sorted id ≤ j (0 when there is none): log2(n) steps over the padded sorted ids.
fn search_le(j: u32, k: u32) -> u32 {
  var p = 0u;
  for (var step = (1u << sort_log2(k)) >> 1u; step > 0u; step = step >> 1u) {
    if (ids_sorted[p + step] <= j) {
      p = p + step;
    }
  }
  return p;
}

fn in_s(j: u32, kb: u32, k: u32) -> bool {
  let h = j & (NBITS - 1u);
  if ((atomicLoad(&bitmap[h >> 5u]) & (1u << (h & 31u))) == 0u) {
    return false;
  }
  if (k <= KSORT) {
    return ids_sorted[search_le(j, k)] == j;
  }
  for (var i = 0u; i < k; i = i + 1u) { // K > KSORT: a linear scan (real GPUs; see the header)
    if (ids[kb + i] == j) {
      return true;
    }
  }
  return false;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let row = wid.x + wid.y * params.nx;
  if (row >= params.rows) {
    return;
  }
  let V = params.vocab;
  let K = params.k;
  let base = params.l_off + row * V;
  let kb = params.k_off + row * K;
  let ri = params.r_off + row;
  let lrow = params.o_off + row;
  if (tid == 0u) {
    flag = rowinfo[ri].on;
  }
  let row_on = workgroupUniformLoad(&flag);
  if (row_on == 0u) {
    for (var e = tid; e < V / VW; e = e + WG) {
      grad[base / VW + e] = LT(0.0);
    }
    if (tid == 0u) {
      loss[lrow] = 0.0;
    }
    return;
  }
  let sorted = MODE == 2u && K <= KSORT; // tail: the ids of S sorted in workgroup memory
  if (sorted) {
    sort_ids(tid, kb, K);
  }
  if (params.check_ids != 0u) {
    // Ids that were not checked on the host (they live on the GPU): sorted, a repeat is next to its twin;
    // otherwise O(K²/WG) comparisons per thread.
    if (tid == 0u) {
      bad_ids = 0u;
    }
    workgroupBarrier();
    var bad = false;
    if (sorted) {
      for (var i = tid; i < K; i = i + WG) {
        bad = bad || ids_sorted[i] >= V || (i + 1u < K && ids_sorted[i] == ids_sorted[i + 1u]);
      }
    } else {
      for (var p = tid; p < K * K; p = p + WG) {
        let i = p / K;
        let j = p % K;
        let a = ids[kb + i];
        bad = bad || (j == 0u && a >= V) || (i < j && a == ids[kb + j]);
      }
    }
    if (bad) {
      bad_ids = 1u;
    }
    if (workgroupUniformLoad(&bad_ids) != 0u) {
      let nan = bitcast<f32>(0x7fc00000u);
      for (var e = tid; e < V / VW; e = e + WG) {
        grad[base / VW + e] = LT(nan);
      }
      if (tid == 0u) {
        loss[lrow] = nan;
      }
      return;
    }
  }
  let info = rowinfo[ri];
  let it = params.inv_t;
  let T = params.t;
  let alpha = params.alpha;
  let need_ce = params.need_ce != 0u;
  let ckd = info.scale * alpha * T; // α·T²·(1/T): the KD gradient in u = s/T, brought back to s
  let cce = info.scale * (1.0 - alpha);

  if (MODE == 2u) {
    for (var w = tid; w < NWORDS; w = w + WG) {
      atomicStore(&bitmap[w], 0u);
    }
    workgroupBarrier();
    for (var i = tid; i < K; i = i + WG) {
      let h = ids[kb + i] & (NBITS - 1u);
      atomicOr(&bitmap[h >> 5u], 1u << (h & 31u));
    }
    workgroupBarrier();
  }

  // Pass 1: online logsumexp over the row (tail: over the complement of S).
  var st = vec3<f32>(BIG_NEG, 0.0, 0.0);
  let ne = V / VW;
  let be = base / VW;
  let streams = MODE != 1u || need_ce; // (renorm without CE reads only the K entries of S)
  let cached = ne <= CN * WG; // one read of the row: pass 2 takes the elements from `mine`
  var mine: array<LT, CN>; // this thread's elements of a row read once
  if (streams && cached) {
    for (var c = 0u; c < CN; c = c + 1u) { // constant trip count: unrolled, `mine` stays in registers
      let e = tid + c * WG;
      if (e < ne) {
        let x = logits[be + e];
        mine[c] = x;
        if (MODE == 2u) {
          st = push_elem(st, drop_s(x, e, kb, K), need_ce); // the complement of S only
        } else {
          st = push_elem(st, x, need_ce);
        }
      }
    }
  } else if (streams) {
    for (var e = tid; e < ne; e = e + WG) {
      var x = logits[be + e];
      if (MODE == 2u) {
        x = drop_s(x, e, kb, K); // the complement of S only
      }
      st = push_elem(st, x, need_ce);
    }
  }
  let stream = reduce_lse(tid, st);

  // The K ids of S: teacher state (z in the m slot, Σ exp((z - m)/T) in a) and student state.
  var tz = vec3<f32>(BIG_NEG, 0.0, 0.0);
  var ss = vec3<f32>(BIG_NEG, 0.0, 0.0);
  for (var i = tid; i < K; i = i + WG) {
    tz = lse_push(tz, tvals[kb + i], false);
    ss = lse_push(ss, ld(base + ids[kb + i]), need_ce);
  }
  let tzr = reduce_lse(tid, tz);
  let ssr = reduce_lse(tid, ss);

  // Log-normalizers, kept relative to the student's row max M (in s units) so that log-probabilities
  // (x - M)/T - sh are formed from small numbers: sh_* = lse_*(s/T) - M/T, sh1_* = lse_*(s) - M.
  var m_ref = max(stream.x, ssr.x);
  if (MODE == 1u && !need_ce) {
    m_ref = ssr.x; // renorm without CE streams nothing
  }
  let sh_str = max((stream.x - m_ref) * it + log_sum(stream.y), BIG_NEG); // over the stream (tail: the complement of S)
  let sh_s = (ssr.x - m_ref) * it + log_acc(ssr.y); // over S
  var sh_all = sh_str;
  var sh1_all = max((stream.x - m_ref) + log_sum(stream.z), BIG_NEG);
  var log_1mq = 0.0; // tail: log(1 - Q_S)
  var r_tail = 0.0;
  var log_r = 0.0;
  if (MODE == 2u) {
    sh_all = log_add_exp(sh_str, sh_s);
    if (need_ce) {
      sh1_all = log_add_exp(sh1_all, (ssr.x - m_ref) + log_acc(ssr.z));
    }
    // log(1 - Q_S) = lse_not - lse_all = -log1p(exp(lse_S - lse_not)), with no difference of large numbers.
    let e = exp(sh_s - sh_str);
    if (e <= 1.0) {
      log_1mq = -log_series(e / (2.0 + e));
    } else {
      log_1mq = -log(1.0 + e);
    }
    if (K < V) { // with K == V the tail bucket is empty: r stays 0 whatever rounding left in it
      let d = ((tzr.x - info.tlz_hi) - info.tlz_lo) * it + log_acc(tzr.y); // log Σ_S p_i
      r_tail = max(0.0, -expm1(d));
      let p_s = exp(d);
      if (p_s < 0.5) {
        log_r = log_series(-p_s / (2.0 - p_s)); // log(1 - P) without forming 1 - P
      } else if (r_tail > 0.0) {
        log_r = log_acc(r_tail);
      }
    }
  }
  let lpz_shift = log_acc(tzr.y); // log Σ_S exp((z - mz)/T)

  // Reverse KL and JSD (modes renorm and tail): the buckets are the ids of S and, in mode tail, the tail
  // bucket. The divergence is Σ_b term_b; the gradient in u is c·q_j·(λ_b(j) - lam_mean) with
  // lam_mean = Σ_b Q_b λ_b and c = 1 (reverse) or 1 - β (JSD): docs/losses.md.
  let div = params.divergence;
  // log β and log(1 - β), each as log1p(-x) of the other when that is small (log 1.0 would lose it).
  var lb = 0.0; // (β is 0 unless JSD)
  if (div == 2u) {
    lb = select(log_acc(params.beta), log_series(-params.beta_c / (2.0 - params.beta_c)), params.beta_c < 0.5);
  }
  let l1b = select(log_acc(params.beta_c), log_series(-params.beta / (2.0 - params.beta)), params.beta < 0.5);
  let c_div = select(params.beta_c, 1.0, div == 1u);
  var kd_div = 0.0;
  var lam_mean = 0.0;
  var tail_factor_div = 0.0; // c·(λ_tail - lam_mean): the gradient of an id outside S is this times q_j
  // On S, d = log(Q_i/P_i) = (s_i - z_i)/T + d_row: s_i - z_i is exact when the two are close, so that
  // close distributions keep the digits of d that float32 has (not those of log Q_i and log P_i, ~log K).
  var d_row = ((info.tlz_hi - m_ref) + info.tlz_lo) * it - sh_all; // tail: log q_i - (z_i/T - Lz) - (s_i - z_i)/T
  if (MODE == 1u) {
    d_row = (tzr.x - m_ref) * it + lpz_shift - sh_s; // renorm: log q̂_i - log p̂_i - (s_i - z_i)/T
  }
  if ((MODE == 1u || MODE == 2u) && div != 0u) {
    var t_part = 0.0;
    var l_part = 0.0;
    for (var i = tid; i < K; i = i + WG) {
      let z = tvals[kb + i];
      let du = (ld(base + ids[kb + i]) - m_ref) * it;
      let lq = select(du - sh_all, du - sh_s, MODE == 1u);
      let tl = div_bucket(lq, (ld(base + ids[kb + i]) - z) * it + d_row, lb, l1b);
      t_part = t_part + tl.x;
      l_part = l_part + exp(lq) * tl.y;
    }
    kd_div = reduce_sum(tid, t_part);
    lam_mean = reduce_sum(tid, l_part);
    if (MODE == 2u && K < V) {
      // The tail bucket: Q_t = 1 - Q_S (from log_1mq, in log space), P_t = r. A Q_t below float32's
      // smallest normal number counts as 0 (its ids' gradient underflows anyway).
      let q_on = log_1mq > -87.0;
      let qt = select(0.0, exp(log_1mq), q_on);
      var t_t = 0.0;
      var lam_t = 0.0;
      if (div == 1u) {
        let lp = select(LOG_TAIL_FLOOR, log_r, r_tail > TAIL_FLOOR); // log max(r, 2^-20)
        if (q_on) {
          let tl = div_bucket(log_1mq, log_1mq - lp, lb, l1b);
          t_t = tl.x;
          lam_t = tl.y;
        } else {
          t_t = exp(lp); // Q log(Q/P) - Q + P at Q = 0
        }
      } else if (r_tail > 0.0 && q_on) {
        let tl = div_bucket(log_1mq, log_1mq - log_r, lb, l1b);
        t_t = tl.x;
        lam_t = tl.y;
      } else if (q_on) {
        lam_t = -l1b; // P_t = 0: M = (1 - β)Q
        t_t = params.beta_c * qt * lam_t;
      } else if (r_tail > 0.0) {
        t_t = -params.beta * r_tail * lb; // Q_t = 0: M = βP
      }
      kd_div = kd_div + t_t;
      lam_mean = lam_mean + qt * lam_t;
      if (q_on) {
        tail_factor_div = c_div * (lam_t - lam_mean);
      }
    }
  }

  // KD over S.
  var kd_part = 0.0;
  for (var i = tid; i < K; i = i + WG) {
    let z = tvals[kb + i];
    let du = (ld(base + ids[kb + i]) - m_ref) * it;
    var lp = (z - tzr.x) * it - lpz_shift;
    var lq = du - sh_all;
    if (MODE == 1u) {
      lq = du - sh_s;
    }
    if (MODE == 2u) {
      lp = ((z - info.tlz_hi) - info.tlz_lo) * it; // z/T - Lz
    }
    kd_part = kd_part + exp(lp) * (lp - lq);
  }
  var kd = reduce_sum(tid, kd_part);
  var csum = 1.0; // sampled: C = Σ c_i
  if (MODE == 3u) {
    // The slots hold c_i: the cross-entropy estimate Σ c_i (-log q_i), and C for the gradient.
    var ce_part = 0.0;
    var c_part = 0.0;
    for (var i = tid; i < K; i = i + WG) {
      let ci = tvals[kb + i];
      let lq = (ld(base + ids[kb + i]) - m_ref) * it - sh_all;
      ce_part = ce_part - ci * lq;
      c_part = c_part + ci;
    }
    kd = reduce_sum(tid, ce_part);
    csum = reduce_sum(tid, c_part);
  }
  if (MODE == 1u) {
    // renorm: when p̂ and q̂ are close, Σ p̂ (log p̂ - log q̂) is a small difference of terms near log(1/K) and
    // loses about 1e-7 absolute. Instead, with d = (z - s)/T and e = d - Σ p̂ d (KL is unchanged by shifts
    // of d): KL(p̂‖q̂) = -log Σ q̂ exp(e) = -log1p(Σ q̂ expm1(e)), formed from small numbers only.
    var c_part = 0.0;
    for (var i = tid; i < K; i = i + WG) {
      let z = tvals[kb + i];
      let su = ld(base + ids[kb + i]) - m_ref;
      c_part = c_part + exp((z - tzr.x) * it - lpz_shift) * ((z - tzr.x) - su) * it;
    }
    let c = reduce_sum(tid, c_part);
    var m_part = 0.0;
    for (var i = tid; i < K; i = i + WG) {
      let z = tvals[kb + i];
      let su = ld(base + ids[kb + i]) - m_ref;
      m_part = m_part + exp(su * it - sh_s) * expm1(((z - tzr.x) - su) * it - c);
    }
    let msum = reduce_sum(tid, m_part);
    if (abs(msum) < 0.5) { // (also false for a non-finite sum: keep the direct form then)
      kd = -log_series(msum / (2.0 + msum));
    }
  }
  if (tid == 0u) {
    if (MODE == 2u && r_tail > 0.0) {
      kd = kd + r_tail * (log_r - log_1mq);
    }
    if (MODE == 3u) {
      kd = (info.tlz_hi + kd) + info.tlz_lo; // Σ c log p_T + Σ c (-log q)
    }
    if ((MODE == 1u || MODE == 2u) && div != 0u) {
      kd = kd_div;
    }
    var l = alpha * T * T * kd;
    if (need_ce) {
      l = l + (1.0 - alpha) * (sh1_all - (ld(base + u32(info.label)) - m_ref));
    }
    loss[lrow] = info.scale * l;
  }

  // Pass 2: the gradient over the whole row; the entries of S are rewritten below. In mode tail, off S:
  // q_j - r·q_j/(1 - Q_S) = q_j·(1 - r·exp(lse_all - lse_not)).
  var tail_factor = select(1.0, 1.0 - r_tail * exp(sh_all - sh_str), r_tail > 0.0);
  if (MODE == 2u && div != 0u) {
    tail_factor = tail_factor_div; // reverse, JSD: c·(λ_tail - lam_mean)
  }
  let gc = GradConst(select(ckd, ckd * csum, MODE == 3u), cce, m_ref, sh_all, sh1_all, tail_factor);
  if (streams && cached) {
    for (var c = 0u; c < CN; c = c + 1u) {
      let e = tid + c * WG;
      if (e < ne) {
        grad[be + e] = grad_elem(mine[c], gc, need_ce);
      }
    }
  } else {
    for (var e = tid; e < ne; e = e + WG) {
      var g = LT(0.0);
      if (streams) {
        g = grad_elem(logits[be + e], gc, need_ce); // the row's second read (rows longer than CN·WG)
      }
      grad[be + e] = g;
    }
  }
  storageBarrier();
  for (var i = tid; i < K; i = i + WG) {
    let id = ids[kb + i];
    let x = ld(base + id);
    let du = (x - m_ref) * it;
    let z = tvals[kb + i];
    var g = 0.0;
    if (MODE == 0u) {
      g = ckd * (exp(du - sh_all) - exp((z - tzr.x) * it - lpz_shift));
    } else if (MODE == 1u) {
      g = ckd * (exp(du - sh_s) - exp((z - tzr.x) * it - lpz_shift));
    } else if (MODE == 3u) {
      g = ckd * (csum * exp(du - sh_all) - z); // z holds c_i here
    } else {
      g = ckd * (exp(du - sh_all) - exp(((z - info.tlz_hi) - info.tlz_lo) * it));
    }
    if ((MODE == 1u || MODE == 2u) && div != 0u) {
      let lq = select(du - sh_all, du - sh_s, MODE == 1u);
      g = (ckd * c_div) * exp(lq) * (div_bucket(lq, (x - z) * it + d_row, lb, l1b).y - lam_mean);
    }
    if (need_ce) {
      g = g + cce * exp((x - m_ref) - sh1_all);
    }
    st_grad(base + id, g);
  }
  storageBarrier();
  if (tid == 0u && need_ce) {
    let y = base + u32(info.label);
    st_grad(y, ld_grad(y) - cce);
  }
}
