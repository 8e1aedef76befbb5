/**
 * The report in a real browser: headless Chromium (Debian's `chromium` package) opens `report.html` from a
 * file URL, and the test checks the DOM it renders and the pixels of a screenshot.
 *
 * This file is not part of `deno task test` (a fresh machine has no Chromium): `deno task test-browser` runs
 * it, and `.ci/run` does so after the test suite. Chromium is looked for at `SPARSEKD_CHROMIUM` or
 * `/usr/bin/chromium`; when it is missing the test fails (CI installs it) unless `SPARSEKD_SKIP_BROWSER=1`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { inflateSync } from "node:zlib";
import { formatNumber, formatPercent } from "../src/report/number_format.ts";
import { DEFAULT_MAX_POINTS, SERIES_COLORS } from "../src/report/svg_chart.ts";
import { writeReport } from "../src/report/write_report.ts";
import { byId, byTag, pointCount, textOf } from "./report_html_query.ts";
import { freshSeed } from "./_rng.ts";
import { syntheticReportInput } from "./report_synthetic.ts";

const CHROMIUM = Deno.env.get("SPARSEKD_CHROMIUM") ?? "/usr/bin/chromium";
const SKIP = Deno.env.get("SPARSEKD_SKIP_BROWSER") === "1";
const TIMEOUT_MS = 90_000;

async function requireChromium(): Promise<void> {
  try {
    const info = await Deno.stat(CHROMIUM);
    if (info.isFile) return;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  throw new Error(
    `Chromium not found at ${CHROMIUM}: install Debian's chromium package (apt-get install -y chromium), ` +
      `point SPARSEKD_CHROMIUM at a Chromium binary, or set SPARSEKD_SKIP_BROWSER=1 to skip the browser test`,
  );
}

/** Runs headless Chromium on `url` with a fresh profile and returns its stdout; fails on a non-zero exit. */
async function chromium(url: string, extra: string[]): Promise<string> {
  const profile = await Deno.makeTempDir({ prefix: "sparsekd_chromium_" });
  try {
    const out = await new Deno.Command(CHROMIUM, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        `--user-data-dir=${profile}`,
        ...extra,
        url,
      ],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `chromium exited with ${out.code}:\n${stderr.slice(-2000)}`);
    return new TextDecoder().decode(out.stdout);
  } finally {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

/** Decodes an 8-bit, non-interlaced RGB or RGBA PNG into RGBA pixels. */
function decodePng(png: Uint8Array): { width: number; height: number; rgba: Uint8Array } {
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  assert.ok(sig.every((b, i) => png[i] === b), "not a PNG");
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let width = 0, height = 0, colorType = 0;
  const idat: Uint8Array[] = [];
  for (let off = 8; off < png.length;) {
    const len = view.getUint32(off);
    const type = new TextDecoder().decode(png.subarray(off + 4, off + 8));
    const data = png.subarray(off + 8, off + 8 + len);
    if (type === "IHDR") {
      width = view.getUint32(off + 8);
      height = view.getUint32(off + 12);
      assert.equal(data[8], 8, "bit depth 8 expected");
      colorType = data[9];
      assert.ok(colorType === 2 || colorType === 6, `colour type ${colorType} not handled`);
      assert.equal(data[12], 0, "interlaced PNG not handled");
    } else if (type === "IDAT") idat.push(data);
    else if (type === "IEND") break;
    off += 12 + len;
  }
  const raw = new Uint8Array(inflateSync(Buffer.concat(idat)));
  const bpp = colorType === 6 ? 4 : 3;
  const stride = width * bpp;
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? px[y * stride + x - bpp] : 0;
      const b = y > 0 ? px[(y - 1) * stride + x] : 0;
      const c = x >= bpp && y > 0 ? px[(y - 1) * stride + x - bpp] : 0;
      let v = line[x];
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      px[y * stride + x] = v & 255;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba.set(px.subarray(i * bpp, i * bpp + 3), i * 4);
    rgba[i * 4 + 3] = bpp === 4 ? px[i * bpp + 3] : 255;
  }
  return { width, height, rgba };
}

function hex(color: string): [number, number, number] {
  const n = parseInt(color.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

Deno.test({
  name: "headless Chromium renders the report's charts and numbers from a file URL",
  ignore: SKIP,
  async fn() {
    await requireChromium();
    const seed = freshSeed();
    const dir = await Deno.makeTempDir({ prefix: "sparsekd_report_chromium_" });
    try {
      const input = syntheticReportInput(seed);
      await Deno.writeTextFile(join(dir, "report_input.json"), JSON.stringify(input));
      const path = await writeReport(dir);
      const url = new URL(`file://${path}`).href;
      const dom = await chromium(url, ["--dump-dom"]);

      assert.ok(dom.includes('id="report"'), `the dumped DOM has no report:\n${dom.slice(0, 500)}`);
      // line charts: one polyline per student with the right number of points
      const loss = byId(dom, "chart-train-loss");
      assert.equal(loss?.tag, "svg", "the training-loss chart is not an <svg> in the DOM");
      const lossLines = byTag(loss!.inner, "polyline");
      assert.equal(lossLines.length, input.students.length);
      input.students.forEach((s, i) => {
        assert.equal(lossLines[i].attrs["data-series"], s.name);
        const n = pointCount(lossLines[i].attrs.points);
        if (s.train.length <= DEFAULT_MAX_POINTS) assert.equal(n, s.train.length);
        else assert.ok(n <= DEFAULT_MAX_POINTS && n >= DEFAULT_MAX_POINTS / 2);
      });
      const ppl = byId(dom, "chart-heldout-ppl")!;
      assert.equal(ppl.attrs["data-scale-y"], "log");
      const pplLines = byTag(ppl.inner, "polyline");
      assert.equal(pplLines.length, input.students.length);
      pplLines.forEach((l, i) => assert.equal(pointCount(l.attrs.points), input.students[i].eval.length));
      const markers = byTag(ppl.inner, "circle").length;
      assert.equal(markers, input.students.reduce((n, s) => n + s.eval.length, 0));
      assert.ok(textOf(ppl.inner).includes(`teacher (${formatNumber(input.teacher.heldoutPpl!)})`));
      for (const id of ["chart-heldout-kl", "chart-heldout-top1", "chart-reliability", "chart-storage"]) {
        assert.equal(byId(dom, id)?.tag, "svg", `${id} missing`);
      }
      byTag(byId(dom, "chart-reliability")!.inner, "polyline").forEach((l, i) => {
        assert.equal(
          pointCount(l.attrs.points),
          input.students[i].final.reliability!.filter((b) => b.count > 0).length,
        );
      });
      const legend = byTag(loss!.inner, "g").filter((g) => g.attrs.class === "legend-item").map((g) =>
        textOf(g.inner)
      );
      assert.deepEqual(legend, input.students.map((s) => s.name));

      // tables: the numbers as shown
      input.students.forEach((s, i) => {
        const t = byId(dom, `student-table-${i}`)!;
        assert.equal(t.attrs["data-student"], s.name);
        assert.ok(textOf(t.inner).startsWith(s.name), "the caption names the student");
        const cell = (m: string) =>
          textOf(byTag(t.inner, "td").find((td) => td.attrs["data-metric"] === m)!.inner);
        assert.equal(cell("ppl").replace(" ★", ""), formatNumber(s.final.ppl));
        assert.equal(cell("kl").replace(" ★", ""), formatNumber(s.final.kl));
        assert.equal(cell("top1").replace(" ★", ""), formatPercent(s.final.top1, 2));
        assert.equal(cell("ece").replace(" ★", ""), formatNumber(s.final.ece, 3));
      });
      const storage = textOf(byId(dom, "storage-table")!.inner);
      assert.ok(storage.includes(formatNumber(input.save.bytesPerToken)), storage);
      assert.ok(storage.includes(formatNumber(input.save.fullLogitsBytesPerToken)), storage);
      assert.ok(
        storage.includes(
          `×${formatNumber(input.save.fullLogitsBytesPerToken / input.save.bytesPerToken, 3)}`,
        ),
      );
      const throughput = textOf(byId(dom, "throughput-table")!.inner);
      assert.ok(throughput.includes(formatNumber(input.save.tokensPerSecond)));
      for (const s of input.students) assert.ok(throughput.includes(formatNumber(s.stepsPerSecond)));

      // pixels: the same page without its polylines, screenshotted too, must have far fewer pixels in each
      // student's colour: the lines are drawn, in their colours
      const html = await Deno.readTextFile(path);
      const bare = html.replace(/<polyline[\s\S]*?<\/polyline>/g, "");
      assert.ok(bare.length < html.length);
      await Deno.writeTextFile(join(dir, "bare.html"), bare);
      const shot = join(dir, "report.png"), bareShot = join(dir, "bare.png");
      await chromium(url, [`--screenshot=${shot}`, "--window-size=1280,3200"]);
      await chromium(new URL(`file://${join(dir, "bare.html")}`).href, [
        `--screenshot=${bareShot}`,
        "--window-size=1280,3200",
      ]);
      const full = decodePng(await Deno.readFile(shot));
      const without = decodePng(await Deno.readFile(bareShot));
      assert.equal(full.width, 1280);
      assert.equal(full.height, 3200);
      const count = (img: { rgba: Uint8Array }, [r, g, b]: number[]) => {
        let n = 0;
        for (let o = 0; o < img.rgba.length; o += 4) {
          if (
            Math.abs(img.rgba[o] - r) + Math.abs(img.rgba[o + 1] - g) + Math.abs(img.rgba[o + 2] - b) <= 24
          ) n++;
        }
        return n;
      };
      input.students.forEach((s, i) => {
        const withLines = count(full, hex(SERIES_COLORS[i])), noLines = count(without, hex(SERIES_COLORS[i]));
        assert.ok(noLines > 0, `the legend and swatch of ${s.name} are missing from the screenshot`);
        assert.ok(
          withLines - noLines > 1000,
          `${s.name}'s lines add only ${withLines - noLines} pixels of ${SERIES_COLORS[i]} to the screenshot`,
        );
      });
      if (Deno.env.get("SPARSEKD_KEEP_SCREENSHOT")) {
        await Deno.copyFile(shot, Deno.env.get("SPARSEKD_KEEP_SCREENSHOT")!);
      }
    } catch (err) {
      console.error(`failing seed: ${seed} (report in ${dir})`);
      throw err;
    }
    await Deno.remove(dir, { recursive: true });
  },
});
