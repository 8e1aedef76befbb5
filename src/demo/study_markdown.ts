/**
 * The study's tables as Markdown: one table per teacher and α (mean ± standard error over the seeds, the
 * stored bytes per position, the gap closed with its uncertainty) and one plain sentence per goal of
 * docs/study.md saying whether the numbers meet it and by how much.
 * @module
 */
import type { StudyRow, StudyTeacher } from "./run_study.ts";
import type { MeanSe } from "./study_stats.ts";

/** The settings the tables mention. */
export interface StudyMarkdownSettings {
  /** Optimizer steps of each student. */
  steps: number;
  /** Sequences per step. */
  batchSize: number;
  /** The seeds asked for. */
  seeds: number[];
  /** The K of the top-K methods. */
  ks: number[];
}

const pm = (x: MeanSe, digits: number, scale = 1) =>
  Number.isNaN(x.mean)
    ? "—"
    : `${(scale * x.mean).toFixed(digits)}${
      Number.isNaN(x.se) ? "" : ` ± ${(scale * x.se).toFixed(digits)}`
    }`;

/**
 * The study's tables and goal verdicts as Markdown.
 *
 * @example
 * ```ts
 * const md = studyMarkdown(rows, teachers, { steps: 100, batchSize: 16, seeds: [1, 2, 3], ks: [8, 64] });
 * ```
 */
export function studyMarkdown(
  rows: StudyRow[],
  teachers: StudyTeacher[],
  settings: StudyMarkdownSettings,
): string {
  const out: string[] = [
    `${settings.steps} steps of batch ${settings.batchSize} per student; seeds ${
      settings.seeds.join(", ")
    }; ` +
    `values are mean ± standard error over the seeds finished (the "seeds" column). "gap closed" = ` +
    `(ppl_CE − ppl) / (ppl_CE − ppl_online), its ± from the three standard errors (delta method). ` +
    `"bytes/pos" is what the method's targets take per token position on disk.`,
    "",
  ];
  for (const t of teachers) {
    const mass = t.ks.map((k, i) => `top-${k} ${(100 * t.topKMass[i]).toFixed(1)} %`).join(", ");
    out.push(
      `### Teacher ${t.spec}`,
      "",
      `Held-out perplexity ${t.heldoutPpl.toFixed(1)}; mean probability mass ${mass}.`,
      "",
    );
    for (const alpha of [...new Set(rows.filter((r) => r.teacher === t.spec).map((r) => r.alpha))]) {
      const here = rows.filter((r) => r.teacher === t.spec && r.alpha === alpha);
      out.push(
        `#### α = ${alpha}`,
        "",
        "| method | K / N | bytes/pos | distinct ids/pos | held-out ppl | KL(teacher‖student) | top-1 agreement | " +
          "ECE | gap closed | seeds |",
        "| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |",
        ...here.map((r) =>
          `| ${r.method} | ${r.k ?? r.n ?? "—"} | ${r.bytesPerPosition?.toFixed(1) ?? "—"} | ${
            r.distinctPerPosition?.toFixed(1) ?? "—"
          } | ${pm(r.ppl, 1)} | ${pm(r.kl, 4)} | ${pm(r.top1, 1, 100)} % | ${pm(r.ece, 4)} | ${
            r.id === "ce-only"
              ? "0 %"
              : r.gapClosed === null
              ? "n/a"
              : `${(100 * r.gapClosed.mean).toFixed(0)}${
                Number.isNaN(r.gapClosed.se) ? "" : ` ± ${(100 * r.gapClosed.se).toFixed(0)}`
              } %`
          } | ${r.seeds.length ? r.seeds.join(",") : "none"} |`
        ),
        "",
      );
    }
  }
  out.push("### Goals", "", ...goalVerdicts(rows, settings), "");
  return out.join("\n");
}

/**
 * One sentence per goal of the study (docs/study.md), each saying met / NOT met / not measured yet, with
 * the numbers.
 *
 * @example
 * ```ts
 * for (const line of goalVerdicts(rows, { steps: 100, batchSize: 16, seeds: [1], ks: [8, 64] })) console.log(line);
 * ```
 */
export function goalVerdicts(rows: StudyRow[], settings: StudyMarkdownSettings): string[] {
  const maxK = Math.max(...settings.ks);
  const done = (r: StudyRow | undefined) => r !== undefined && r.seeds.length > 0;
  const lines: string[] = [];
  const at = (teacher: string, alpha: number) =>
    rows.filter((r) => r.teacher === teacher && r.alpha === alpha);
  const offline = (rs: StudyRow[]) =>
    rs.filter((r) => r.id !== "ce-only" && r.id !== "online-full" && done(r) && (r.k ?? r.n ?? 0) <= maxK);
  const best = (rs: StudyRow[]) =>
    rs.reduce<StudyRow | undefined>((b, r) => (!b || r.ppl.mean < b.ppl.mean ? r : b), undefined);

  const sharp = at("builtin:tslib", 1);
  const sharpBest = best(offline(sharp));
  const sharpOnline = sharp.find((r) => r.id === "online-full");
  if (!sharpBest || !done(sharpOnline)) {
    lines.push(
      "- Representative teacher, α = 1, gap closed ≥ 80 % with KL within 10 % of online: not measured yet.",
    );
  } else {
    const g = sharpBest.gapClosed, klRatio = sharpBest.kl.mean / sharpOnline!.kl.mean;
    const kl = `its KL to the teacher is ${(100 * Math.abs(klRatio - 1)).toFixed(1)} % ${
      klRatio >= 1 ? "above" : "below"
    } the online student's (goal within 10 %: ${klRatio <= 1.1 ? "met" : "NOT met"})`;
    lines.push(
      g === null
        ? `- Representative teacher (builtin:tslib), α = 1: online KD (perplexity ${
          sharpOnline!.ppl.mean.toFixed(1)
        }) does not beat CE-only (${
          at("builtin:tslib", 1).find((r) => r.id === "ce-only")?.ppl.mean.toFixed(1)
        }) on perplexity here, so "gap closed" is undefined (goal NOT met as stated); the best offline method with at ` +
          `most ${maxK} entries per position, ${sharpBest.method} (${
            sharpBest.k ?? sharpBest.n
          }), reaches perplexity ` +
          `${sharpBest.ppl.mean.toFixed(1)}, and ${kl}.`
        : `- Representative teacher (builtin:tslib), α = 1: the best offline method with at most ${maxK} entries per ` +
          `position is ${sharpBest.method} (${sharpBest.k ?? sharpBest.n}), closing ${
            (100 * g.mean).toFixed(0)
          }` +
          `${
            Number.isNaN(g.se) ? "" : ` ± ${(100 * g.se).toFixed(0)}`
          } % of the gap over ${sharpBest.seeds.length} seed${
            sharpBest.seeds.length === 1 ? "" : "s"
          } (goal ≥ 80 %: ${g.mean >= 0.8 ? "met" : "NOT met"}); ${kl}.`,
    );
  }
  const flat = at("builtin:demo", 1);
  const flatCe = flat.find((r) => r.id === "ce-only");
  const flatSampled = flat.filter((r) => r.n !== null && done(r)).sort((a, b) => b.n! - a.n!)[0];
  if (!done(flatCe) || !flatSampled) {
    lines.push("- Flat teacher, α = 1, sampled beats CE-only on perplexity: not measured yet.");
  } else {
    const d = flatSampled.ppl.mean - flatCe!.ppl.mean;
    lines.push(
      `- Flat teacher (builtin:demo), α = 1: sampled N=${flatSampled.n} reaches perplexity ` +
        `${flatSampled.ppl.mean.toFixed(1)} against CE-only's ${flatCe!.ppl.mean.toFixed(1)} (goal: lower; ` +
        `${d < 0 ? "met" : `NOT met, by ${d.toFixed(1)}`}).`,
    );
  }
  for (const teacher of [...new Set(rows.map((r) => r.teacher))]) {
    const rs = at(teacher, 1);
    const b = best(offline(rs)), online = rs.find((r) => r.id === "online-full");
    if (!b || !done(online)) continue;
    const ratio = b.ece.mean / online!.ece.mean;
    lines.push(
      `- Calibration, ${teacher}, α = 1: the best offline student's ECE is ${b.ece.mean.toFixed(4)}, ` +
        `${ratio.toFixed(1)}× the online student's ${online!.ece.mean.toFixed(4)} (goal ≤ 2×: ${
          ratio <= 2 ? "met" : "NOT met"
        }).`,
    );
  }
  return lines;
}
