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
// The host prepends: const WG: u32 (a power of two), const MODE: u32 (0 topk, 1 renorm, 2 tail), const CN:
// u32 (elements of a row each thread keeps for the one-read path: 128 floats, as 32 vec4 or 128 f32), and one of
// sparse_kd_vec4.wgsl (vocab % 4 == 0: rows move as vec4) or sparse_kd_scalar.wgsl, which define the
// element type LT of `logits` and `grad`, its width VW, and the helpers hmax, hsum, ld, ld_grad, st_grad,
// drop_s.

const NBITS: u32 = 16384u; // tail mode: membership bitmap of S, hashed by id % NBITS
const NWORDS: u32 = 512u;
const KCACHE: u32 = 256u; // ids of S kept in workgroup memory for the exact membership check
const BIG_NEG: f32 = -3.0e38;

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
}

struct RowInfo {
  label: i32,
  tlz_hi: f32, // T·Lz(T) = tlz_hi + tlz_lo (tail mode)
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
var<workgroup> bitmap: array<u32, NWORDS>;
var<workgroup> ids_wg: array<u32, KCACHE>;
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
  if (MODE == 0u) {
    o = g.ckd * exp(du - g.sh_all);
  } else if (MODE == 2u) {
    o = (g.ckd * g.tail_factor) * exp(du - g.sh_all);
  }
  if (need_ce) {
    o = o + g.cce * exp((x - g.m_ref) - g.sh1_all);
  }
  return o;
}

fn in_s(j: u32, kb: u32, k: u32) -> bool {
  let h = j & (NBITS - 1u);
  if ((bitmap[h >> 5u] & (1u << (h & 31u))) == 0u) {
    return false;
  }
  if (k <= KCACHE) {
    for (var i = 0u; i < k; i = i + 1u) {
      if (ids_wg[i] == j) {
        return true;
      }
    }
    return false;
  }
  for (var i = 0u; i < k; i = i + 1u) {
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
  if (params.check_ids != 0u) {
    // Ids that were not checked on the host (they live on the GPU): O(K²/WG) comparisons per thread.
    if (tid == 0u) {
      bad_ids = 0u;
    }
    workgroupBarrier();
    var bad = false;
    for (var p = tid; p < K * K; p = p + WG) {
      let i = p / K;
      let j = p % K;
      let a = ids[kb + i];
      bad = bad || (j == 0u && a >= V) || (i < j && a == ids[kb + j]);
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
      var bits = 0u;
      for (var i = 0u; i < K; i = i + 1u) {
        let h = ids[kb + i] & (NBITS - 1u);
        if ((h >> 5u) == w) {
          bits = bits | (1u << (h & 31u));
        }
      }
      bitmap[w] = bits;
    }
    for (var i = tid; i < min(K, KCACHE); i = i + WG) {
      ids_wg[i] = ids[kb + i];
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
    var l = alpha * T * T * kd;
    if (need_ce) {
      l = l + (1.0 - alpha) * (sh1_all - (ld(base + u32(info.label)) - m_ref));
    }
    loss[lrow] = info.scale * l;
  }

  // Pass 2: the gradient over the whole row; the entries of S are rewritten below. In mode tail, off S:
  // q_j - r·q_j/(1 - Q_S) = q_j·(1 - r·exp(lse_all - lse_not)).
  let tail_factor = select(1.0, 1.0 - r_tail * exp(sh_all - sh_str), r_tail > 0.0);
  let gc = GradConst(ckd, cce, m_ref, sh_all, sh1_all, tail_factor);
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
    } else {
      g = ckd * (exp(du - sh_all) - exp(((z - info.tlz_hi) - info.tlz_lo) * it));
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
