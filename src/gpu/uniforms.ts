/**
 * One declaration of a kernel's uniforms: the TypeScript side lists the WGSL struct's fields once, in order,
 * and the byte offsets and packing come from that list with WGSL's layout rules (scalars: 4 bytes, align 4;
 * vec4<f32>: 16 bytes, align 16; the struct's size rounds up to its alignment). Tests parse the struct out of
 * the `.wgsl` file (`parseWgslStruct`) and check that it declares the same fields in the same order.
 * @module
 */

/** A field type this helper knows: 4-byte scalars, and a fixed-length array of vec4<f32>. */
export type UniformType = "u32" | "i32" | "f32" | "vec4f[]";

/** One field of a uniform struct. */
export interface UniformField {
  /** The field's name in the WGSL struct. */
  name: string;
  /** Its type. */
  type: UniformType;
}

/** The computed layout of a uniform struct. */
export interface UniformLayout {
  /** The fields, in declaration order. */
  fields: readonly UniformField[];
  /** Byte offset of each field. */
  offsets: Record<string, number>;
  /** Size in bytes for `arrayLength` vec4s in the (last) `vec4f[]` field, if any. */
  size(arrayLength?: number): number;
}

/**
 * Consecutive fields of one type, for writing a struct's layout as runs of like fields.
 *
 * @example
 * ```ts
 * const layout = uniformLayout([...fieldsOf("u32", "rows", "k"), ...fieldsOf("f32", "t")]);
 * ```
 */
export function fieldsOf(type: UniformType, ...names: string[]): UniformField[] {
  return names.map((name) => ({ name, type }));
}

/**
 * The layout of a uniform struct whose fields are `fields` in this order. A `vec4f[]` field must be the
 * last one.
 *
 * @example
 * ```ts
 * const layout = uniformLayout([{ name: "rows", type: "u32" }, { name: "t", type: "f32" }]);
 * // layout.offsets = { rows: 0, t: 4 }, layout.size() = 8
 * ```
 */
export function uniformLayout(fields: readonly UniformField[]): UniformLayout {
  const offsets: Record<string, number> = {};
  let at = 0;
  let align = 4;
  fields.forEach((f, i) => {
    if (f.type === "vec4f[]") {
      if (i !== fields.length - 1) {
        throw new Error(`uniform field ${f.name}: an array must be the last field`);
      }
      at = Math.ceil(at / 16) * 16;
      align = 16;
    }
    offsets[f.name] = at;
    if (f.type !== "vec4f[]") at += 4;
  });
  const fixed = at;
  return {
    fields,
    offsets,
    size(arrayLength = 0) {
      return Math.ceil((fixed + 16 * arrayLength) / align) * align;
    },
  };
}

/**
 * Packs `values` (one per field: a number, or an array of numbers for a `vec4f[]` field, padded with zeros)
 * into `target` at byte `at` (default a new buffer of the struct's size). Missing fields throw.
 *
 * @example
 * ```ts
 * const bytes = packUniforms(layout, { rows: 3, t: 2 });
 * ```
 */
export function packUniforms(
  layout: UniformLayout,
  values: Record<string, number | readonly number[]>,
  target?: ArrayBuffer,
  at = 0,
): ArrayBuffer {
  const arrayField = layout.fields.find((f) => f.type === "vec4f[]");
  const arr = arrayField ? values[arrayField.name] : undefined;
  const n = Array.isArray(arr) ? Math.ceil(arr.length / 4) : 0;
  const buf = target ?? new ArrayBuffer(layout.size(n));
  const view = new DataView(buf, at);
  for (const f of layout.fields) {
    const v = values[f.name];
    if (v === undefined) throw new Error(`uniform field ${f.name} has no value`);
    const o = layout.offsets[f.name];
    if (f.type === "vec4f[]") {
      (v as readonly number[]).forEach((x, i) => view.setFloat32(o + 4 * i, x, true));
    } else if (f.type === "u32") view.setUint32(o, v as number, true);
    else if (f.type === "i32") view.setInt32(o, v as number, true);
    else view.setFloat32(o, v as number, true);
  }
  return buf;
}

/**
 * The fields of `struct <name> { ... }` in WGSL source, as this helper's types (`array<vec4<f32>, N>` is
 * `vec4f[]`; any other type is returned as written). For the tests that tie a layout to its shader.
 *
 * @example
 * ```ts
 * const fields = parseWgslStruct("struct P { rows: u32, t: f32, }", "P");
 * // [{ name: "rows", type: "u32" }, { name: "t", type: "f32" }]
 * ```
 */
export function parseWgslStruct(source: string, name: string): { name: string; type: string }[] {
  const m = new RegExp(`struct\\s+${name}\\s*\\{([^}]*)\\}`).exec(source);
  if (!m) throw new Error(`struct ${name} not found`);
  const body = m[1].replace(/\/\/[^\n]*/g, "");
  const out: { name: string; type: string }[] = [];
  // Split on commas that are not inside <...>.
  let depth = 0, cur = "";
  for (const ch of body + ",") {
    if (ch === "<") depth++;
    if (ch === ">") depth--;
    if (ch === "," && depth === 0) {
      const t = cur.trim();
      if (t) {
        const [field, ...type] = t.split(":");
        const ty = type.join(":").replace(/\s+/g, "");
        out.push({ name: field.trim(), type: /^array<vec4<f32>,/.test(ty) ? "vec4f[]" : ty });
      }
      cur = "";
    } else cur += ch;
  }
  return out;
}

/**
 * A uniform buffer of `count` 256-byte slots (one per dispatch, at dynamic-offset alignment) and the bytes
 * to pack them in before one `writeBuffer`.
 *
 * @example
 * ```ts
 * const { uniform, bytes } = uniformSlots(device, "topk params", chunks);
 * packUniforms(layout, values, bytes, c * 256);
 * device.queue.writeBuffer(uniform, 0, bytes);
 * ```
 */
export function uniformSlots(
  device: GPUDevice,
  label: string,
  count: number,
): { uniform: GPUBuffer; bytes: ArrayBuffer } {
  const uniform = device.createBuffer({
    label,
    size: count * 256,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  return { uniform, bytes: new ArrayBuffer(count * 256) };
}
