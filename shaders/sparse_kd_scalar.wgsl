// Helpers for shaders/sparse_kd.wgsl when the vocabulary is not a multiple of 4: rows are read and written
// one f32 at a time (the host prepends this file).
alias LT = f32;
const VW: u32 = 1u;

fn hmax(x: f32) -> f32 {
  return x;
}

fn hsum(x: f32) -> f32 {
  return x;
}

fn ld(i: u32) -> f32 {
  return logits[i];
}

fn ld_grad(i: u32) -> f32 {
  return grad[i];
}

fn st_grad(i: u32, v: f32) {
  grad[i] = v;
}

// BIG_NEG if id e is a teacher id, else x.
fn drop_s(x: f32, e: u32, kb: u32, k: u32) -> f32 {
  return select(x, BIG_NEG, in_s(e, kb, k));
}
