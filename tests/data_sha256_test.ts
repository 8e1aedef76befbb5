import assert from "node:assert/strict";
import { sha256File, sha256Hex } from "../src/data/sha256.ts";
import { withSeed } from "./_rng.ts";

function hex(b: ArrayBuffer): string {
  return Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");
}

Deno.test("sha256Hex of split parts equals crypto.subtle of the whole", async () => {
  await withSeed("data_sha256_test", async (rng) => {
    const data = crypto.getRandomValues(new Uint8Array(1 + Math.floor(rng.uniform() * 60_000)));
    const cut = Math.floor(rng.uniform() * data.length);
    assert.equal(
      sha256Hex(data.subarray(0, cut), data.subarray(cut)),
      hex(await crypto.subtle.digest("SHA-256", data)),
    );
  });
});

Deno.test("sha256File hashes a file in chunks like crypto.subtle hashes it whole", async () => {
  await withSeed("data_sha256_test", async (rng) => {
    const data = crypto.getRandomValues(new Uint8Array(50_000 + Math.floor(rng.uniform() * 10_000)));
    const path = await Deno.makeTempFile();
    try {
      await Deno.writeFile(path, data);
      assert.equal(await sha256File(path, 4093), hex(await crypto.subtle.digest("SHA-256", data)));
    } finally {
      await Deno.remove(path);
    }
  });
});
