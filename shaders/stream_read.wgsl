// The practical rooflines for kernels that stream big float32 arrays: `main` reads a binding once and
// writes one partial sum per workgroup (the host checks their total against the CPU's sum, so a read that
// did not happen cannot pass for a fast one); `copy` reads it and writes it to a second binding (one read +
// one write per element, the traffic pattern of a loss kernel that writes a gradient). Both are capped
// grid-stride loops over blocks: the host dispatches at most a fixed number of workgroups, far below
// maxComputeWorkgroupsPerDimension; workgroup g takes blocks g, g + groups, ... of SPAN vec4s, its threads
// strided inside each block (contiguous reads per workgroup, which CPU adapters need). The prelude defines
// WG (threads per workgroup, a power of two) and SPAN (vec4s per block).

// The host writes these 16 bytes per binding (bench/gpu_timing.ts).
struct Params {
  n4: u32, // vec4s in the bound range
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> data4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  var acc = vec4<f32>(0.0);
  for (var b = wg.x * SPAN; b < params.n4; b += nwg.x * SPAN) {
    let hi = min(params.n4, b + SPAN);
    for (var i = b + lid; i < hi; i += WG) {
      acc += data4[i];
    }
  }
  partial[lid] = (acc.x + acc.y) + (acc.z + acc.w);
  workgroupBarrier();
  for (var step = WG / 2u; step > 0u; step = step / 2u) {
    if (lid < step) {
      partial[lid] += partial[lid + step];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    out[wg.x] = partial[0];
  }
}

@compute @workgroup_size(WG)
fn copy(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  for (var b = wg.x * SPAN; b < params.n4; b += nwg.x * SPAN) {
    let hi = min(params.n4, b + SPAN);
    for (var i = b + lid; i < hi; i += WG) {
      dst4[i] = data4[i];
    }
  }
}
