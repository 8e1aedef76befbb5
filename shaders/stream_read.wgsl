// The practical roofline for kernels that read a big float32 array once: every workgroup sums a
// contiguous span of vec4s (threads strided inside it) and writes one number, so the reads cannot be
// optimized away. The prelude defines WG (threads per workgroup) and SPAN (vec4s per workgroup).

struct Params {
  n4: u32, // vec4s in the bound range
  tail: u32, // float32 values after the last whole vec4 (0..3), read by the last workgroup
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> data4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> data1: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let lo = wg.x * SPAN;
  let hi = min(params.n4, lo + SPAN);
  var acc = vec4<f32>(0.0);
  for (var i = lo + lid; i < hi; i += WG) {
    acc += data4[i];
  }
  var s = acc.x + acc.y + acc.z + acc.w;
  if (lid == 0u && hi == params.n4) {
    for (var t = 0u; t < params.tail; t++) {
      s += data1[params.n4 * 4u + t];
    }
  }
  partial[lid] = s;
  workgroupBarrier();
  if (lid == 0u) {
    var total = 0.0;
    for (var j = 0u; j < WG; j++) {
      total += partial[j];
    }
    out[wg.x] = total;
  }
}
