// Helpers for shaders/sparse_kd.wgsl when the vocabulary is a multiple of 4: rows are read and written as
// vec4<f32> (the host prepends this file). Elements are addressed singly through their vec4.
alias LT = vec4<f32>;
const VW: u32 = 4u;

fn hmax(x: vec4<f32>) -> f32 {
  return max(max(x.x, x.y), max(x.z, x.w));
}

fn hsum(x: vec4<f32>) -> f32 {
  return (x.x + x.y) + (x.z + x.w);
}

fn ld(i: u32) -> f32 {
  return logits[i >> 2u][i & 3u];
}

fn ld_grad(i: u32) -> f32 {
  return grad[i >> 2u][i & 3u];
}

fn st_grad(i: u32, v: f32) {
  grad[i >> 2u][i & 3u] = v;
}

// Replaces the components of element e (ids 4e..4e+3) that are teacher ids by BIG_NEG.
fn drop_s(x: vec4<f32>, e: u32, kb: u32, k: u32) -> vec4<f32> {
  let j = e * 4u;
  let h = j & (NBITS - 1u); // the 4 ids share one bitmap word (j is a multiple of 4)
  if (((atomicLoad(&bitmap[h >> 5u]) >> (h & 31u)) & 15u) == 0u) {
    return x; // the common case: none of the 4 ids can be in S
  }
  if (k <= KSORT) {
    // One search: the ids of S in [j, j + 3] are those of the sorted ids p - 3 .. p (p the last ≤ j + 3)
    // that are ≥ j, the ids being distinct. (An index below 0 is clamped to 0, one already compared.)
    let p = search_le(j + 3u, k);
    let c = vec4<u32>(0u, 1u, 2u, 3u);
    let ins = (vec4<u32>(ids_sorted[p] - j) == c) | (vec4<u32>(ids_sorted[max(p, 1u) - 1u] - j) == c) |
      (vec4<u32>(ids_sorted[max(p, 2u) - 2u] - j) == c) | (vec4<u32>(ids_sorted[max(p, 3u) - 3u] - j) == c);
    return select(x, vec4<f32>(BIG_NEG), ins);
  }
  let ins = vec4<bool>(in_s(j, kb, k), in_s(j + 1u, kb, k), in_s(j + 2u, kb, k), in_s(j + 3u, kb, k));
  return select(x, vec4<f32>(BIG_NEG), ins);
}
