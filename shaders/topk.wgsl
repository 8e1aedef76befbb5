// Top-k per row with the full-vocabulary logsumexp, one workgroup per row.
//
// The prelude defines: WG (threads per workgroup, a power of two), NT (number of temperatures),
// NT4 = ceil(NT / 4), RB (each thread keeps 4*RB sub-maxima; 4*RB*WG >= k), CAP (candidate capacity, a
// power of two >= max(4*RB*WG, 1024)), SAMPLE (stride of the estimate's sample, in vec4s).
//
// Per row, for long rows with a small k (the usual case): one full read.
//   estimate  the sub-maxima of a strided sample (1/SAMPLE of the row) give a key `est` whose expected
//             count in the row is a small multiple of k.
//   pass 1    as below, and every element with key >= est is appended to workgroup memory.
//   If at least k and at most CAP elements were appended, they hold the top k (ties included): order them
//   directly. Otherwise (estimate too high, too many ties) the exact path below runs from its select step.
// Otherwise (short rows, large k, or the estimate failed):
//   pass 1  one read of the row: NaN flag, online logsumexp per temperature (running max + rescaled sum),
//           and 4*RB sub-maxima per thread (maxima of disjoint subsets) of the order-preserving keys.
//   select  the k-th largest sub-maximum is a threshold with at least k elements at or above it.
//           (Barriers are costly on software adapters: the thread results are combined by one thread.)
//   pass 2  one read of the row: the elements whose key >= threshold are appended to workgroup memory.
//           If they fit (the usual case) they are sorted and the first k are the answer. If not (heavy
//           ties, adversarial layouts) an exact radix select on the keys finds the k-th largest key and
//           the candidates are collected in id order (so equal values keep the lowest ids).
//   order   each candidate's rank by (value descending, id ascending), counted against all candidates
//           (no barriers: cheaper than a sorting network on software adapters).
//
// Output buffer layout for a dispatch of `rows` rows (u32 words):
//   [ids: rows*k][values (f32 bits): rows*k][logsumexp (f32 bits): rows*NT][non-finite flags: rows]
// (a row is non-finite when it holds NaN or +Infinity, or holds only -Infinity)

struct Params {
  vocab: u32,
  k: u32,
  rows: u32,
  in_off: u32, // element offset of this dispatch's row 0 inside the bound logits range
  inv_t: array<vec4<f32>, NT4>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
// The same range as `logits`, read 16 bytes at a time (fewer, wider loads: much faster on CPU adapters).
@group(0) @binding(3) var<storage, read> logits4: array<vec4<u32>>;

const NEG_MAX: f32 = -3.4028234663852886e38;
const NEG_INF_BITS: u32 = 0xff800000u;
const POS_INF_BITS: u32 = 0x7f800000u;

var<workgroup> cand_key: array<u32, CAP>;
var<workgroup> cand_id: array<u32, CAP>;
var<workgroup> red_f: array<f32, WG>;
var<workgroup> red_u: array<u32, WG>;
var<workgroup> red_u2: array<u32, WG>;
var<workgroup> red_s: array<f32, WG * NT>;
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> counter: atomic<u32>;
var<workgroup> shared_u: array<u32, 8>;
var<workgroup> shared_f: f32;

// Order-preserving key: a larger float has a larger key; -0 and +0 share one key (they are equal values).
fn key_of(bits: u32) -> u32 {
  let b = select(bits, 0u, bits == 0x80000000u);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn inv_t(t: u32) -> f32 {
  return params.inv_t[t / 4u][t % 4u];
}

// Pass-1 state of this thread.
var<private> p_m: f32; // running max of the finite values seen
var<private> p_s: array<f32, NT>; // sum of exp((x - p_m) / T) per temperature
var<private> p_nan: bool;
var<private> p_posinf: bool;
var<private> p_mk: array<vec4<u32>, RB>; // sub-maximum keys (0: none)

// Folds four values (those with `inside` set) into the pass-1 state; their keys go to sub-maxima block r.
fn absorb(bits: vec4<u32>, inside: vec4<bool>, r: u32) {
  let isnan = (bits & vec4<u32>(0x7fffffffu)) > vec4<u32>(POS_INF_BITS);
  let isinf = (bits & vec4<u32>(0x7fffffffu)) == vec4<u32>(POS_INF_BITS);
  p_nan = p_nan || any(isnan & inside);
  p_posinf = p_posinf || any((bits == vec4<u32>(POS_INF_BITS)) & inside);
  let usable = inside & !isnan & !isinf;
  let x = select(vec4<f32>(NEG_MAX), bitcast<vec4<f32>>(bits), usable);
  let keys = vec4<u32>(key_of(bits.x), key_of(bits.y), key_of(bits.z), key_of(bits.w));
  p_mk[r] = max(p_mk[r], select(vec4<u32>(0u), keys, inside & !isnan));
  let m_new = max(p_m, max(max(x.x, x.y), max(x.z, x.w)));
  for (var t = 0u; t < NT; t++) {
    let it = inv_t(t);
    let terms = select(vec4<f32>(0.0), exp((x - vec4<f32>(m_new)) * it), usable);
    p_s[t] = p_s[t] * exp((p_m - m_new) * it) + dot(terms, vec4<f32>(1.0));
  }
  p_m = m_new;
}

// Four scalar loads from the row (for its unaligned head and tail), `inside` where index + c < end.
fn load4(base: u32, index: u32, end: u32) -> vec4<u32> {
  var v = vec4<u32>(0u);
  for (var c = 0u; c < 4u; c++) {
    if (index + c < end) {
      v[c] = bitcast<u32>(logits[base + index + c]);
    }
  }
  return v;
}

// Candidate append for pass 2.
fn append(keys: vec4<u32>, ids: vec4<u32>, hit: vec4<bool>) {
  if (any(hit)) {
    for (var c = 0u; c < 4u; c++) {
      if (hit[c]) {
        let slot = atomicAdd(&counter, 1u);
        if (slot < CAP) {
          cand_key[slot] = keys[c];
          cand_id[slot] = ids[c];
        }
      }
    }
  }
}

fn keys4(bits: vec4<u32>) -> vec4<u32> {
  return vec4<u32>(key_of(bits.x), key_of(bits.y), key_of(bits.z), key_of(bits.w));
}

// a sorts before b: larger key first, then lower id.
fn before(ka: u32, ia: u32, kb: u32, ib: u32) -> bool {
  return ka > kb || (ka == kb && ia < ib);
}

fn write_sub_maxima(mk: array<vec4<u32>, RB>, lid: u32) {
  for (var r = 0u; r < RB; r++) {
    for (var c = 0u; c < 4u; c++) {
      cand_key[lid * 4u * RB + 4u * r + c] = mk[r][c];
    }
  }
}

// Each thread's 4*RB keys `mk` are in cand_key[lid*4*RB ...] for every thread (barrier done): the one of
// rank `want` (descending, ties by index) is written to shared_u[slot].
fn select_rank(mk: array<vec4<u32>, RB>, lid: u32, want: u32, slot: u32) {
  var rk: array<vec4<u32>, RB>;
  for (var r = 0u; r < RB; r++) {
    rk[r] = vec4<u32>(0u);
  }
  for (var j = 0u; j < 4u * RB * WG; j++) {
    let v = vec4<u32>(cand_key[j]);
    let jj = vec4<u32>(j);
    for (var r = 0u; r < RB; r++) {
      let a = vec4<u32>(lid * 4u * RB + 4u * r) + vec4<u32>(0u, 1u, 2u, 3u);
      rk[r] += select(vec4<u32>(0u), vec4<u32>(1u), (v > mk[r]) | ((v == mk[r]) & (jj < a)));
    }
  }
  for (var r = 0u; r < RB; r++) {
    for (var c = 0u; c < 4u; c++) {
      if (rk[r][c] == want) {
        shared_u[slot] = mk[r][c];
      }
    }
  }
}

// Exclusive prefix sums of red_u and red_u2 over the WG threads (Hillis-Steele in place, then shift).
fn scan2(lid: u32) {
  for (var off = 1u; off < WG; off = off << 1u) {
    var a = 0u;
    var b = 0u;
    if (lid >= off) {
      a = red_u[lid - off];
      b = red_u2[lid - off];
    }
    workgroupBarrier();
    red_u[lid] += a;
    red_u2[lid] += b;
    workgroupBarrier();
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wg.x;
  let vocab = params.vocab;
  let k = params.k;
  let rows = params.rows;
  let base = params.in_off + row * vocab;
  let out_vals = rows * k;
  let out_lse = 2u * rows * k;
  let out_flag = 2u * rows * k + rows * NT;

  // The row splits into an unaligned head (0..3 values), whole vec4s, and a tail (0..3 values).
  let head = min(vocab, (4u - base % 4u) % 4u);
  let nb = (vocab - head) / 4u;
  let body4 = (base + head) / 4u;
  let tail0 = head + 4u * nb;
  let lane = vec4<u32>(0u, 1u, 2u, 3u);
  let direct = vocab > CAP && k > 4u * RB * WG; // too few sub-maxima: go straight to the exact radix select

  // ---- estimate: rank est_rank-1 among the sub-maxima of every SAMPLE-th vec4 (about vocab/SAMPLE values);
  // about SAMPLE*est_rank >= k + 4 sqrt(k) + 8 row elements lie at or above it ----
  let est_rank = (k + 4u * u32(sqrt(f32(k))) + 8u + SAMPLE - 1u) / SAMPLE;
  let use_est = !direct && nb >= 8u * SAMPLE * WG && 2u * SAMPLE * est_rank <= CAP;
  if (lid == 0u) {
    atomicStore(&counter, 0u);
  }
  var est = 0xffffffffu;
  if (use_est) {
    // Four sub-maxima per thread (4*WG in all: ranking them is cheap).
    var smk = vec4<u32>(0u);
    for (var i = lid * SAMPLE; i < nb; i += WG * SAMPLE) {
      smk = max(smk, keys4(logits4[body4 + i]));
    }
    for (var c = 0u; c < 4u; c++) {
      cand_key[lid * 4u + c] = smk[c];
    }
    workgroupBarrier();
    var rk = vec4<u32>(0u);
    let a = vec4<u32>(lid * 4u) + lane;
    for (var j = 0u; j < 4u * WG; j++) {
      let v = vec4<u32>(cand_key[j]);
      rk += select(vec4<u32>(0u), vec4<u32>(1u), (v > smk) | ((v == smk) & (vec4<u32>(j) < a)));
    }
    for (var c = 0u; c < 4u; c++) {
      if (rk[c] == est_rank - 1u) {
        shared_u[5] = smk[c];
      }
    }
    est = workgroupUniformLoad(&shared_u[5]);
  }
  let est4 = vec4<u32>(est);

  // ---- pass 1: NaN flag, online logsumexp, 4*RB sub-maxima of the keys per thread ----
  p_m = NEG_MAX;
  for (var t = 0u; t < NT; t++) {
    p_s[t] = 0.0;
  }
  p_nan = false;
  p_posinf = false;
  for (var r = 0u; r < RB; r++) {
    p_mk[r] = vec4<u32>(0u);
  }
  if (lid == 0u) {
    let bits = load4(base, 0u, head);
    let inside = lane < vec4<u32>(head);
    absorb(bits, inside, 0u);
    if (use_est) {
      append(keys4(bits), lane, inside & (keys4(bits) >= est4));
    }
  }
  if (lid == WG - 1u) {
    let bits = load4(base, tail0, vocab);
    let inside = vec4<u32>(tail0) + lane < vec4<u32>(vocab);
    absorb(bits, inside, 0u);
    if (use_est) {
      append(keys4(bits), vec4<u32>(tail0) + lane, inside & (keys4(bits) >= est4));
    }
  }
  if (use_est) {
    for (var i = lid; i < nb; i += RB * WG) {
      for (var r = 0u; r < RB; r++) {
        let j = i + r * WG;
        let inside = j < nb;
        let bits = logits4[body4 + select(i, j, inside)];
        absorb(bits, vec4<bool>(inside), r);
        let keys = keys4(bits);
        append(keys, vec4<u32>(head + 4u * j) + lane, vec4<bool>(inside) & (keys >= est4));
      }
    }
  } else {
    for (var i = lid; i < nb; i += RB * WG) {
      for (var r = 0u; r < RB; r++) {
        let j = i + r * WG;
        let inside = j < nb;
        absorb(logits4[body4 + select(i, j, inside)], vec4<bool>(inside), r);
      }
    }
  }
  var m = p_m;
  let s = p_s;
  let nan = p_nan;
  let posinf = p_posinf;
  var mk = p_mk;

  // ---- combine the threads: flags, max, logsumexp per temperature (thread 0, one barrier) ----
  red_u[lid] = select(0u, 1u, nan) | select(0u, 2u, posinf);
  red_f[lid] = m;
  for (var t = 0u; t < NT; t++) {
    red_s[lid * NT + t] = s[t];
  }
  if (!use_est) {
    write_sub_maxima(mk, lid); // (no candidates yet: the counter is still 0)
  }
  workgroupBarrier();
  if (lid == 0u) {
    var flags = 0u;
    var empty = false; // no finite value: a row of only -Infinity (or of NaN/+Infinity)
    var big_m = NEG_MAX;
    for (var j = 0u; j < WG; j++) {
      flags = flags | red_u[j];
      big_m = max(big_m, red_f[j]);
    }
    for (var t = 0u; t < NT; t++) {
      let it = inv_t(t);
      var sum = 0.0;
      for (var j = 0u; j < WG; j++) {
        let sj = red_s[j * NT + t];
        sum += select(sj * exp((red_f[j] - big_m) * it), 0.0, sj == 0.0);
      }
      var lse = big_m * it + log(sum);
      if (sum == 0.0) {
        lse = bitcast<f32>(NEG_INF_BITS);
        empty = true;
      }
      if ((flags & 2u) != 0u) {
        lse = bitcast<f32>(POS_INF_BITS);
      }
      out[out_lse + row * NT + t] = bitcast<u32>(lse);
    }
    // Non-finite row (NaN, +Infinity, or only -Infinity): the host refuses it. Bit 0 then stops the row.
    if (empty || (flags & 3u) != 0u) {
      flags = flags | 1u;
    }
    out[out_flag + row] = flags & 1u;
    shared_u[0] = flags | (atomicLoad(&counter) << 2u);
    shared_u[4] = 0u;
  }
  let flags = workgroupUniformLoad(&shared_u[0]);
  let appended = flags >> 2u;
  if ((flags & 1u) != 0u) {
    // Non-finite row: the host reports it as an error; write defined values and stop.
    for (var j = lid; j < k; j += WG) {
      out[row * k + j] = 0u;
      out[out_vals + row * k + j] = 0u;
    }
    return;
  }

  // The estimate's candidates hold the top k when there are at least k of them and they all fit.
  var n = appended;
  if (!(use_est && appended >= k && appended <= CAP)) {
    // ---- threshold: the k-th largest sub-maximum (at least k elements have a key >= it) ----
    if (use_est) {
      // The sub-maxima replace the estimate's candidates (every thread is past the barrier above).
      write_sub_maxima(mk, lid);
      if (lid == 0u) {
        atomicStore(&counter, 0u);
      }
      workgroupBarrier();
    }
    if (!direct) {
      // Rank each of this thread's sub-maxima among all of them (ties by index); rank k-1 is the threshold.
      select_rank(mk, lid, k - 1u, 4u);
    }
    let tkey = workgroupUniformLoad(&shared_u[4]); // 0: every element is a candidate
    // (every thread has read cand_key in select_rank: pass 2 may overwrite it)

    // ---- pass 2: append the candidates (key >= tkey) ----
    let tk4 = vec4<u32>(tkey);
    if (lid == 0u) {
      let keys = keys4(load4(base, 0u, head));
      append(keys, lane, (keys >= tk4) & (lane < vec4<u32>(head)));
    }
    if (lid == WG - 1u) {
      let keys = keys4(load4(base, tail0, vocab));
      append(keys, vec4<u32>(tail0) + lane, (keys >= tk4) & (vec4<u32>(tail0) + lane < vec4<u32>(vocab)));
    }
    for (var j = select(lid, nb, direct); j < nb; j += WG) {
      let keys = keys4(logits4[body4 + j]);
      append(keys, vec4<u32>(head + 4u * j) + lane, keys >= tk4);
    }
    workgroupBarrier();
    if (lid == 0u) {
      shared_u[1] = atomicLoad(&counter);
    }
    let counted = workgroupUniformLoad(&shared_u[1]);
    let total = select(counted, CAP + 1u, direct);

    n = total;
    if (total > CAP) {
      // ---- exact fallback: radix select of the k-th largest key, 8 bits at a time ----
      var prefix = 0u;
      var mask = 0u;
      var remaining = k;
      for (var shift = 24i; shift >= 0i; shift -= 8i) {
        for (var j = lid; j < 256u; j += WG) {
          atomicStore(&hist[j], 0u);
        }
        workgroupBarrier();
        for (var j = lid; j < vocab; j += WG) {
          let key = key_of(bitcast<u32>(logits[base + j]));
          if ((key & mask) == prefix) {
            atomicAdd(&hist[(key >> u32(shift)) & 255u], 1u);
          }
        }
        workgroupBarrier();
        if (lid == 0u) {
          var above = 0u;
          var d = 255u;
          loop {
            let c = atomicLoad(&hist[d]);
            if (above + c >= remaining || d == 0u) {
              break;
            }
            above += c;
            d -= 1u;
          }
          shared_u[2] = prefix | (d << u32(shift));
          shared_u[3] = remaining - above;
        }
        prefix = workgroupUniformLoad(&shared_u[2]);
        remaining = shared_u[3];
        mask = mask | (255u << u32(shift));
        workgroupBarrier();
      }
      // prefix is now the k-th largest key; `remaining` elements equal to it belong to the top k.
      let kth = prefix;
      let need_eq = remaining;
      let c_gt = k - need_eq;
      let blk = (vocab + WG - 1u) / WG;
      let lo = min(vocab, lid * blk);
      let hi = min(vocab, lo + blk);
      var gt = 0u;
      var eq = 0u;
      for (var j = lo; j < hi; j++) {
        let key = key_of(bitcast<u32>(logits[base + j]));
        gt += select(0u, 1u, key > kth);
        eq += select(0u, 1u, key == kth);
      }
      red_u[lid] = gt;
      red_u2[lid] = eq;
      workgroupBarrier();
      scan2(lid);
      var pg = red_u[lid] - gt; // exclusive prefix
      var pe = red_u2[lid] - eq;
      for (var j = lo; j < hi; j++) {
        let key = key_of(bitcast<u32>(logits[base + j]));
        if (key > kth) {
          cand_key[pg] = key;
          cand_id[pg] = j;
          pg += 1u;
        } else if (key == kth) {
          if (pe < need_eq) {
            cand_key[c_gt + pe] = key;
            cand_id[c_gt + pe] = j;
          }
          pe += 1u;
        }
      }
      n = k;
    }
  }
  workgroupBarrier();

  // ---- order: each candidate's rank by (value descending, id ascending); the first k are written ----
  // Each thread ranks four candidates at a time against all of them (one pair of loads per comparison row).
  for (var c0 = 4u * lid; c0 < n; c0 += 4u * WG) {
    let valid = vec4<u32>(c0) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(n);
    var ko = vec4<u32>(0u);
    var io = vec4<u32>(0u);
    for (var c = 0u; c < 4u; c++) {
      if (valid[c]) {
        ko[c] = cand_key[c0 + c];
        io[c] = cand_id[c0 + c];
      }
    }
    var rank = vec4<u32>(0u);
    for (var j = 0u; j < n; j++) {
      let kj = vec4<u32>(cand_key[j]);
      let ij = vec4<u32>(cand_id[j]);
      rank += select(vec4<u32>(0u), vec4<u32>(1u), (kj > ko) | ((kj == ko) & (ij < io)));
    }
    for (var c = 0u; c < 4u; c++) {
      if (valid[c] && rank[c] < k) {
        out[row * k + rank[c]] = io[c];
        out[out_vals + row * k + rank[c]] = bitcast<u32>(logits[base + io[c]]);
      }
    }
  }
}
