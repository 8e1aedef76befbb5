/**
 * One kernel shape: each kernel's uniforms are declared once in its WGSL struct, and the TypeScript field
 * list that packs them must name the same fields, with the same types, in the same order.
 */
import assert from "node:assert/strict";
import { packUniforms, parseWgslStruct, type UniformLayout, uniformLayout } from "../src/gpu/uniforms.ts";
import { SPARSE_KD_PARAMS } from "../src/kernels/sparse_kd.ts";
import { TOPK_PARAMS } from "../src/kernels/topk.ts";
import { SCALE_PARAMS } from "../src/train/kd_loss_op.ts";

const shader = (name: string) => Deno.readTextFile(new URL(`../shaders/${name}`, import.meta.url));

for (
  const [file, struct, layout] of [
    ["topk.wgsl", "Params", TOPK_PARAMS],
    ["sparse_kd.wgsl", "Params", SPARSE_KD_PARAMS],
    ["sparse_kd_scale.wgsl", "ScaleParams", SCALE_PARAMS],
  ] as [string, string, UniformLayout][]
) {
  Deno.test(`the uniforms packed for ${file} are the fields of its struct ${struct}, in order`, async () => {
    const declared = parseWgslStruct(await shader(file), struct);
    assert.deepEqual(declared, layout.fields.map((f) => ({ name: f.name, type: f.type })));
  });
}

Deno.test("uniform offsets follow WGSL's layout: scalars every 4 bytes, a vec4 array at 16", () => {
  const l = uniformLayout([
    { name: "a", type: "u32" },
    { name: "b", type: "f32" },
    { name: "c", type: "i32" },
    { name: "v", type: "vec4f[]" },
  ]);
  assert.deepEqual(l.offsets, { a: 0, b: 4, c: 8, v: 16 });
  assert.equal(l.size(0), 16);
  assert.equal(l.size(2), 48);
  const bytes = packUniforms(l, { a: 7, b: 0.5, c: -3, v: [1, 2, 3, 4, 5] });
  assert.equal(bytes.byteLength, 48);
  const dv = new DataView(bytes);
  assert.equal(dv.getUint32(0, true), 7);
  assert.equal(dv.getFloat32(4, true), 0.5);
  assert.equal(dv.getInt32(8, true), -3);
  assert.equal(dv.getFloat32(16 + 4 * 4, true), 5);
  assert.equal(dv.getFloat32(16 + 5 * 4, true), 0); // padding of the last vec4
  assert.throws(() => packUniforms(l, { a: 1, b: 2, v: [] }), /field c has no value/);
  const s = uniformLayout([{ name: "x", type: "u32" }, { name: "y", type: "u32" }, {
    name: "z",
    type: "f32",
  }]);
  assert.equal(s.size(), 12);
});

Deno.test("parseWgslStruct reads fields across comments and nested template commas", () => {
  const src =
    "struct P {\n  a: u32, // one\n  b: f32,\n  arr: array<vec4<f32>, NT4>,\n}\nstruct Q { x: u32 }";
  assert.deepEqual(parseWgslStruct(src, "P"), [
    { name: "a", type: "u32" },
    { name: "b", type: "f32" },
    { name: "arr", type: "vec4f[]" },
  ]);
  assert.deepEqual(parseWgslStruct(src, "Q"), [{ name: "x", type: "u32" }]);
  assert.throws(() => parseWgslStruct(src, "R"), /struct R not found/);
});
