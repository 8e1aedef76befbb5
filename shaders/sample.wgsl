// Sampled targets: N draws with replacement per row from softmax(z/t) over the full vocabulary, one
// workgroup per row. The CPU oracle `src/kernels/sample_reference.ts` computes exactly the same integers and
// draws exactly the same ids (docs/format.md, "Sampled targets").
//
// The prelude defines: WG (threads per workgroup), N (draws per row), and the float32 constants LOG2E,
// LN2_HI, LN2_LO, C0..C7 (bit patterns from the host, so that both sides use the same bits).
//
// Per row:
//   max     m = the largest finite logit (exact).
//   weights q_i = floor(w_i * 2^34), w_i = exp_det((z_i - m) * inv_t) (0 below X_MIN), exact integers as
//           (hi, lo) u32 pairs; thread j sums those of its contiguous chunk [j*CH, (j+1)*CH) exactly.
//   prefix  thread 0: exclusive prefix P_j of the chunk sums and the total Q (< 2^52).
//   draws   draw d: 64 Philox-4x32-10 bits r_d of counter (d/2, position lo, position hi, DOMAIN) under the
//           key (seed lo, seed hi); U_d = floor(r_d * Q / 2^64). Ranked (ties by d) into ascending order.
//   walk    thread j walks its chunk once, accumulating q_i from P_j, and gives each draw with
//           U in [P_j, P_{j+1}) the id i where the running sum first exceeds U.
//   pack    thread 0: the sorted ids become distinct ids, their hit counts and logits.
//
// exp_det evaluates a fixed polynomial with one float32 rounding per operation. Every product goes through
// `opq` (an xor with params.zero, 0 at run time but unknown to the compiler), so that no compiler can fuse
// it into a multiply-add whose single rounding would differ from the CPU's.
//
// Output per row (u32 words, stride 1 + 3N): [distinct count L][ids: N][hits: N][logit bits: N]; only the
// first L of each array are written.

struct Params {
  vocab: u32,
  rows: u32,
  in_off: u32, // element offset of this dispatch's row 0 inside the bound logits range
  inv_t: f32,
  seed_lo: u32,
  seed_hi: u32,
  pos_lo: u32, // global position of this dispatch's row 0
  pos_hi: u32,
  zero: u32, // always 0: makes products opaque to the compiler
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

const X_MIN: f32 = -24.0;
const DOMAIN: u32 = 0x73616d70u;

var<workgroup> red_f: array<f32, WG>;
var<workgroup> chunk_hi: array<u32, WG>; // chunk sums, then their exclusive prefix
var<workgroup> chunk_lo: array<u32, WG>;
var<workgroup> total: vec2<u32>; // (hi, lo)
var<workgroup> u_hi: array<u32, N>;
var<workgroup> u_lo: array<u32, N>;
var<workgroup> ids: array<u32, N>;
var<workgroup> shared_m: f32;

fn opq(x: f32) -> f32 {
  return bitcast<f32>(bitcast<u32>(x) ^ params.zero);
}

fn exp_det(x: f32) -> f32 {
  let n = floor(opq(x * LOG2E) + 0.5);
  var r = x - opq(n * LN2_HI);
  r = r - opq(n * LN2_LO);
  var p = C7;
  p = opq(p * r) + C6;
  p = opq(p * r) + C5;
  p = opq(p * r) + C4;
  p = opq(p * r) + C3;
  p = opq(p * r) + C2;
  p = opq(p * r) + C1;
  p = opq(p * r) + C0;
  return p * bitcast<f32>(u32(i32(n) + 127) << 23u);
}

// q = floor(exp_det((z - m) * inv_t) * 2^34) as (hi, lo).
fn weight(z: f32, m: f32) -> vec2<u32> {
  let x = (z - m) * params.inv_t;
  if (!(x >= X_MIN)) {
    return vec2<u32>(0u);
  }
  let w4 = exp_det(x) * 4.0;
  let hi = floor(w4);
  return vec2<u32>(u32(hi), u32((w4 - hi) * 4294967296.0));
}

// (hi, lo) + (hi, lo)
fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
  let lo = a.y + b.y;
  return vec2<u32>(a.x + b.x + select(0u, 1u, lo < a.y), lo);
}

fn less64(a: vec2<u32>, b: vec2<u32>) -> bool {
  return a.x < b.x || (a.x == b.x && a.y < b.y);
}

// (hi, lo) of the 64-bit product of two u32.
fn mul_wide(a: u32, b: u32) -> vec2<u32> {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p00 = a0 * b0;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  return vec2<u32>(p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u), (p00 & 0xffffu) | (mid << 16u));
}

fn philox(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = ctr;
  var k = key;
  for (var round = 0u; round < 10u; round++) {
    let p0 = mul_wide(0xd2511f53u, c.x);
    let p1 = mul_wide(0xcd9e8d57u, c.z);
    c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    k = k + vec2<u32>(0x9e3779b9u, 0xbb67ae85u);
  }
  return c;
}

// floor(r * q / 2^64) for r = (hi, lo) and q = (hi, lo) < 2^52: the high 64 bits of the 128-bit product.
fn mul_hi64(r: vec2<u32>, q: vec2<u32>) -> vec2<u32> {
  let p0 = mul_wide(r.y, q.y); // * 2^0
  let p1 = mul_wide(r.y, q.x); // * 2^32
  let p2 = mul_wide(r.x, q.y); // * 2^32
  let p3 = mul_wide(r.x, q.x); // * 2^64
  // bits 32..63 of the product: p0.hi + p1.lo + p2.lo (the carry out goes to bit 64)
  let s1 = p0.x + p1.y;
  let c1 = select(0u, 1u, s1 < p0.x);
  let s2 = s1 + p2.y;
  let c2 = select(0u, 1u, s2 < s1);
  return add64(add64(p3, vec2<u32>(0u, p1.x)), add64(vec2<u32>(0u, p2.x), vec2<u32>(0u, c1 + c2)));
}

// First sorted draw index s in [0, N] with U_s >= p.
fn lower_bound(p: vec2<u32>) -> u32 {
  var lo = 0u;
  var hi = N;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (less64(vec2<u32>(u_hi[mid], u_lo[mid]), p)) {
      lo = mid + 1u;
    } else {
      hi = mid;
    }
  }
  return lo;
}

const PER: u32 = (N + WG - 1u) / WG;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wg.x;
  let vocab = params.vocab;
  let base = params.in_off + row * vocab;
  let stride = 1u + 3u * N;

  // ---- max of the finite logits ----
  var m = bitcast<f32>(0xff800000u);
  for (var i = lid; i < vocab; i += WG) {
    let z = logits[base + i];
    if (z > m && z < bitcast<f32>(0x7f800000u)) {
      m = z;
    }
  }
  red_f[lid] = m;
  workgroupBarrier();
  if (lid == 0u) {
    var mm = red_f[0];
    for (var j = 1u; j < WG; j++) {
      mm = max(mm, red_f[j]);
    }
    shared_m = mm;
  }
  m = workgroupUniformLoad(&shared_m);

  // ---- exact chunk sums of the integer weights ----
  let ch = (vocab + WG - 1u) / WG;
  let c0 = min(vocab, lid * ch);
  let c1 = min(vocab, c0 + ch);
  var sum = vec2<u32>(0u);
  for (var i = c0; i < c1; i++) {
    sum = add64(sum, weight(logits[base + i], m));
  }
  chunk_hi[lid] = sum.x;
  chunk_lo[lid] = sum.y;
  workgroupBarrier();
  if (lid == 0u) {
    var acc = vec2<u32>(0u);
    for (var j = 0u; j < WG; j++) {
      let s = vec2<u32>(chunk_hi[j], chunk_lo[j]);
      chunk_hi[j] = acc.x;
      chunk_lo[j] = acc.y;
      acc = add64(acc, s);
    }
    total = acc;
  }
  let q = workgroupUniformLoad(&total);

  // ---- draws ----
  let pos_lo = params.pos_lo + row;
  let pos_hi = params.pos_hi + select(0u, 1u, pos_lo < row);
  let key = vec2<u32>(params.seed_lo, params.seed_hi);
  var mine_hi: array<u32, PER>;
  var mine_lo: array<u32, PER>;
  for (var e = 0u; e < PER; e++) {
    let d = lid + e * WG;
    if (d < N) {
      let w = philox(vec4<u32>(d / 2u, pos_lo, pos_hi, DOMAIN), key);
      let r = select(vec2<u32>(w.y, w.x), vec2<u32>(w.w, w.z), (d & 1u) == 1u);
      let u = mul_hi64(r, q);
      mine_hi[e] = u.x;
      mine_lo[e] = u.y;
      u_hi[d] = u.x;
      u_lo[d] = u.y;
    }
  }
  workgroupBarrier();
  // rank of each own draw: how many draws are smaller (ties by draw index)
  var rank: array<u32, PER>;
  for (var e = 0u; e < PER; e++) {
    rank[e] = 0u;
  }
  for (var j = 0u; j < N; j++) {
    let v = vec2<u32>(u_hi[j], u_lo[j]);
    for (var e = 0u; e < PER; e++) {
      let d = lid + e * WG;
      let me = vec2<u32>(mine_hi[e], mine_lo[e]);
      if (less64(v, me) || (v.x == me.x && v.y == me.y && j < d)) {
        rank[e] += 1u;
      }
    }
  }
  workgroupBarrier();
  for (var e = 0u; e < PER; e++) {
    let d = lid + e * WG;
    if (d < N) {
      u_hi[rank[e]] = mine_hi[e];
      u_lo[rank[e]] = mine_lo[e];
    }
  }
  workgroupBarrier();

  // ---- walk: the draws that fall in this thread's chunk ----
  let p_start = vec2<u32>(chunk_hi[lid], chunk_lo[lid]);
  var s = lower_bound(p_start);
  var end = N;
  if (lid + 1u < WG) {
    end = lower_bound(vec2<u32>(chunk_hi[lid + 1u], chunk_lo[lid + 1u]));
  }
  var cum = p_start;
  for (var i = c0; i < c1 && s < end; i++) {
    cum = add64(cum, weight(logits[base + i], m));
    while (s < end && less64(vec2<u32>(u_hi[s], u_lo[s]), cum)) {
      ids[s] = i;
      s += 1u;
    }
  }
  workgroupBarrier();

  // ---- pack: distinct ids, hits, logits ----
  if (lid == 0u) {
    let o = row * stride;
    var n = 0u;
    for (var j = 0u; j < N; j++) {
      let id = ids[j];
      if (j > 0u && id == ids[j - 1u]) {
        out[o + 1u + N + n - 1u] += 1u;
      } else {
        out[o + 1u + n] = id;
        out[o + 1u + N + n] = 1u;
        out[o + 1u + 2u * N + n] = bitcast<u32>(logits[base + id]);
        n += 1u;
      }
    }
    out[o] = n;
  }
}
