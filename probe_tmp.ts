import { openSource } from "./src/data/open_source.ts";
import { demoTokenizer } from "./src/data/demo.ts";
const t0 = performance.now();
const s = await openSource("text:tests/fixtures/text", { tokenizer: "models/demo_teacher/tokenizer.json", seqLen: 64, vocabSize: 2048, }) as any;
console.log(s.description, s.sequences, s.fingerprint, s.boundaryToken, s.cached, performance.now() - t0);
const ids = await s.read(0, s.sequences);
console.log(demoTokenizer().decode(ids).slice(0, 1500));
