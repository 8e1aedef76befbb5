// A child-process script of tests/model_export_test.ts (a file without `_test` so it is not run itself): loads
// a model with plain tfjs only — tfjs-core, tfjs-converter and the cpu backend, no sparsekd module and no
// custom op — from a URL (tfjs's own HTTP loader, as in a browser), runs it on int32 token ids and writes the
// logits as little-endian float32 to a file. Prints one JSON line: the output shape and the model's
// declared inputs and outputs.
//
//   deno run -A tests/_plain_tfjs_logits.ts <model.json URL> <B> <L> <ids,comma,separated> <out.bin>
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { loadGraphModel } from "@tensorflow/tfjs-converter";

tf.env().set("PROD", true);
const [url, b, l, csv, out] = Deno.args;
const B = Number(b), L = Number(l);
const ids = csv.split(",").map(Number);
await tf.setBackend("cpu");
const model = await loadGraphModel(url);
const x = tf.tensor2d(ids, [B, L], "int32");
const y = model.execute(x) as tf.Tensor;
const logits = (await y.data()) as Float32Array;
await Deno.writeFile(out, new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength));
console.log(JSON.stringify({ shape: y.shape, inputs: model.inputs, outputs: model.outputs }));
