// dst = src * dy[0] over `n` floats from element `off` of both bindings: the sparse-KD op's backward step
// (the saved gradient times the upstream scalar) for gradients larger than one tfjs binding allows. A capped
// grid of workgroups strides over the range, so the workgroup count never nears the per-dimension limit.

// The host packs this struct from the field list in src/train/kd_loss_op.ts (tests check they match).
struct ScaleParams {
  n: u32,
  off: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<uniform> params: ScaleParams;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * 256u;
  let d = dy[0];
  for (var i = gid.x; i < params.n; i += stride) {
    dst[params.off + i] = src[params.off + i] * d;
  }
}
