"""Which (run, step) each table row reports, and the tables themselves (csv, md, tex).

Row specs are plain data derived from config, so the workflow asks for exactly the evaluations a
table needs and the aggregation reads them back by the same rule.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from . import paths
from .runs import (
    RunSpec,
    arm_key,
    arms,
    base_run,
    expand_runs,
    gkd_runs,
    lr_sweep_runs,
    main_runs,
    paper_schedule,
    seeds,
    seqkd_prefix_runs,
    window_runs,
)

PAPER_DIR = Path(__file__).resolve().parents[2] / "config" / "paper_reference"
BENCH_COLUMNS = ["math500", "aime24", "aime25", "gpqa", "mmlu_pro"]
CHOSEN = -1  # step placeholder: the dev-chosen checkpoint


@dataclass(frozen=True)
class Row:
    method: str  # the paper's row name (reference_results.csv)
    runs: tuple[str, ...]  # one run per training seed (the base model: one)
    step: int  # CHOSEN or a fixed step (0 for the base model)
    budget: str  # none / limited / sufficient


def paper_lengths(config: dict[str, Any]) -> dict[int, int]:
    """This world's length -> the paper's length it stands for (the toy world's `toy.paper_lengths`)."""
    if config["world"] != "toy":
        return {}
    return {int(k): int(v) for k, v in config["toy"]["paper_lengths"].items()}


def paper_length(config: dict[str, Any], n: int) -> int:
    """The paper's length for `n` (validation guarantees every named toy length is in the table)."""
    return paper_lengths(config).get(int(n), int(n)) if config["world"] == "toy" else int(n)


def main_rows(config: dict[str, Any], student: str) -> list[Row]:
    """Tables 1-2: base, the two limited-budget baselines, prefix OPD, and the sufficient-budget runs."""
    runs = main_runs(config, student)
    replicas = [(runs[names[0]], tuple(names)) for names in arms(runs).values()]
    by_method = {arm_key(r): names for r, names in replicas if r.method != "opd_prefix"}
    by_method["opd_schedule"] = by_method[paper_schedule(config)]
    rows = [Row("base", (base_run(student),), 0, "none"),
            Row(f"opd_{config['training']['save_every']}_steps", by_method["opd"],
                config["training"]["save_every"], "limited"),
            Row(f"seqkd_{config['training']['seqkd']['short_steps']}_steps", by_method["seqkd"],
                config["training"]["seqkd"]["short_steps"], "limited")]
    rows += [Row(f"opd_prefix_{paper_length(config, r.l_train)}", names, CHOSEN, "limited")
             for r, names in replicas if r.method == "opd_prefix"]
    rows += [Row(m, by_method[m], CHOSEN, "sufficient") for m in ("opd", "seqkd", "opd_schedule")]
    return rows


def fig7_runs(config: dict[str, Any], runs: dict[str, RunSpec]) -> list[str]:
    """Fig. 7: prefix SeqKD runs and the prefix-OPD run at the same length, all on math500 too."""
    sp = config["experiments"]["seqkd_prefix"]
    names = list(seqkd_prefix_runs(config))
    overlay = [r.name for r in main_runs(config, sp["student"], seeds(config)[0]).values()
               if r.method == "opd_prefix" and r.l_train == sp["prefix"]]
    return names + overlay


def curve_runs(config: dict[str, Any]) -> list[str]:
    """Every run whose dev curve some figure or table reads (that is, every run)."""
    names: list[str] = []
    for student in config["experiments"]["main"]["students"]:
        names += list(main_runs(config, student))
    for group in (window_runs(config), lr_sweep_runs(config), gkd_runs(config), seqkd_prefix_runs(config)):
        names += list(group)
    return list(dict.fromkeys(names))


def resolve_step(row: Row, run: str, chosen: dict[str, int]) -> int:
    return chosen[run] if row.step == CHOSEN else row.step


def cost_at(metrics_csv: str | None, step: int) -> tuple[float, float]:
    """FLOPs and hours cumulative up to `step` (from the run's metrics); NaN for the base model."""
    if metrics_csv is None or step == 0:
        return float("nan"), float("nan")
    m = pd.read_csv(metrics_csv)
    row = m[m["step"] == step]
    if row.empty:
        raise ValueError(f"{metrics_csv}: no row for step {step}")
    return float(row["flops_cum"].iloc[0]), float(row["seconds_cum"].iloc[0]) / 3600


def main_table(rows: list[Row], chosen: dict[str, int], student_name: str, table: int) -> pd.DataFrame:
    """Accuracy (%) per benchmark plus cumulative FLOPs and hours for each row: the mean over the row's training
    seeds, with the seeds' standard deviation in `<benchmark>_sd` (NaN with one seed); `step` lists each seed's
    step ("30/40/60")."""
    out = []
    for row in rows:
        per_seed = []
        for run in row.runs:
            step = resolve_step(row, run, chosen)
            summary = pd.read_csv(row_summary_path(row, run)).set_index("benchmark")
            metrics = None if row.method == "base" else paths.at(paths.METRICS, run=run)
            flops, hours = cost_at(metrics, step)
            rec = {b: 100 * float(summary.loc[b, "mean_at_k"]) if b in summary.index else float("nan")
                   for b in BENCH_COLUMNS}
            per_seed.append(rec | {"flops": flops, "hours": hours, "step": step})
        seeds_frame = pd.DataFrame(per_seed)
        rec = {"table": table, "student": student_name, "method": row.method, "budget": row.budget,
               "runs": " ".join(row.runs), "seeds": len(row.runs),
               "step": "/".join(str(s) for s in seeds_frame["step"])}
        for b in BENCH_COLUMNS:
            rec[b] = float(seeds_frame[b].mean())
            rec[f"{b}_sd"] = float(seeds_frame[b].std(ddof=1)) if len(row.runs) > 1 else float("nan")
        rec |= {"flops": float(seeds_frame["flops"].mean()), "hours": float(seeds_frame["hours"].mean())}
        out.append(rec)
    return pd.DataFrame(out)




def row_summary_path(row: Row, run: str) -> str:
    if row.step == CHOSEN:
        return paths.at(paths.CHOSEN_SUMMARY, run=run)
    return paths.at(paths.SUITE_SUMMARY, run=run, step=row.step)


def chosen_suite_runs(config: dict[str, Any]) -> list[str]:
    """Runs whose dev-chosen checkpoint is evaluated on the full suite: the arms of Tables 1-2 (which the
    claims compare too); other runs' chosen checkpoints keep their curve benchmarks only."""
    return [run for s in config["experiments"]["main"]["students"] for row in main_rows(config, s)
            if row.step == CHOSEN for run in row.runs]


def read_chosen(paths: list[str]) -> dict[str, int]:
    """{run: step} from rule eval_run's results/eval/<run>/chosen.json."""
    return {Path(p).parent.name: json.loads(Path(p).read_text())["step"] for p in paths}


# ------------------------------------------------------------------------------------------------
# rendering


def mark_best(values: pd.Series, higher_is_better: bool = True) -> list[str]:
    """'best' / 'second' / '' per entry, as the paper bolds and underlines within a column."""
    order = values.dropna().sort_values(ascending=not higher_is_better).unique()
    best = order[0] if len(order) else None
    second = order[1] if len(order) > 1 else None
    return ["best" if v == best else "second" if v == second else "" for v in values]


def to_markdown(ours: pd.DataFrame, paper: pd.DataFrame | None, title: str) -> str:
    """Our numbers, bold = best and underline = second best among limited budgets (as the paper),
    with the paper's number in brackets beside each."""
    limited = ours["budget"] == "limited"
    marks = {b: dict(zip(ours.index[limited], mark_best(ours.loc[limited, b]), strict=True)) for b in BENCH_COLUMNS}
    head = "| method | seeds | step | " + " | ".join(BENCH_COLUMNS) + " | FLOPs | hours |"
    lines = [f"### {title}", "", "Accuracy in % (ours, mean ± standard deviation over training seeds) [paper]; "
             "**best** and <u>second</u> among limited budgets (by the mean). Step: each seed's checkpoint. "
             "FLOPs and hours: seed means of the training compute up to the step, counting each rollout's supervised "
             "(response) tokens as Appendix B does (the prompt-inclusive figure is `flops_with_prompt_cum` in the "
             "run's metrics.csv).",
             "", head, "|" + "---|" * (len(BENCH_COLUMNS) + 5)]
    ref = paper.set_index("method") if paper is not None else None
    for i, r in ours.iterrows():
        cells = []
        for b in BENCH_COLUMNS:
            v = f"{r[b]:.1f}" + (f" ± {r[f'{b}_sd']:.1f}" if pd.notna(r.get(f"{b}_sd")) else "")
            mark = marks[b].get(i, "")
            v = f"**{v}**" if mark == "best" else f"<u>{v}</u>" if mark == "second" else v
            if ref is not None and r["method"] in ref.index and pd.notna(ref.loc[r["method"], b]):
                v += f" [{ref.loc[r['method'], b]:.1f}]"
            cells.append(v)
        flops = "-" if pd.isna(r["flops"]) else f"{r['flops']:.2e}"
        hours = "-" if pd.isna(r["hours"]) else f"{r['hours']:.4f}"
        lines.append(f"| {r['method']} | {r['seeds']} | {r['step']} | " + " | ".join(cells) + f" | {flops} | {hours} |")
    return "\n".join(lines) + "\n"


def to_latex(ours: pd.DataFrame, caption: str) -> str:
    cols = ["method", "seeds", "step", *BENCH_COLUMNS, "flops", "hours"]
    frame = ours[cols].copy()
    return frame.to_latex(index=False, float_format="%.1f", caption=caption, na_rep="-")


def write_table(frame: pd.DataFrame, files: tuple[str, str, str], markdown: str, latex: str) -> None:
    """One table as the rule's three outputs, `files` = (csv, md, tex) paths."""
    csv, md, tex = files
    Path(csv).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(csv, index=False)
    Path(md).write_text(markdown)
    Path(tex).write_text(latex)


def paper_reference(table: int) -> pd.DataFrame:
    return pd.read_csv(PAPER_DIR / "reference_results.csv").query("table == @table")


# ------------------------------------------------------------------------------------------------
# KL by position


def kl_bins(kl: pd.DataFrame) -> pd.DataFrame:
    """Per-token KL by (step, source, position bin), pooled over rollouts (token-weighted): the rows of
    `kl_by_position.csv` hold one rollout's bins each (diagnostics) or a batch's (rollout -1)."""
    keys = ["step", "source", "bin_start", "bin_end"]
    frame = kl.assign(kl_sum=kl["kl_mean"] * kl["n_tokens"]).groupby(keys, as_index=False)[["kl_sum", "n_tokens"]]
    out = frame.sum()
    return out.assign(kl_mean=out["kl_sum"] / out["n_tokens"]).drop(columns="kl_sum")


# ------------------------------------------------------------------------------------------------
# which runs the ablations compare (shared by Tables 3-4, the figures and the findings)


def small_large(config: dict[str, Any]) -> tuple[str, str]:
    """The small and the large student: the first and last of experiments.main.students (Tables 1 and 2)."""
    students = config["experiments"]["main"]["students"]
    return students[0], students[-1]


def prefix_arm(config: dict[str, Any], runs: dict[str, RunSpec], student: str, length: int) -> list[str]:
    """The prefix-OPD runs of `student` at prefix `length` and the default learning rate, one per training seed
    the study has (in seed order; empty when it has none)."""
    lr = config["training"]["lr"]
    found = [r for r in runs.values()
             if r.method == "opd_prefix" and r.student == student and r.l_train == length and r.lr == lr]
    return [r.name for r in sorted(found, key=lambda r: seeds(config).index(r.seed))]


def prefix_run(config: dict[str, Any], runs: dict[str, RunSpec], student: str, length: int) -> str | None:
    """The prefix-OPD run of `student` at prefix `length`, the default learning rate and the first training seed
    (the one the ablations train at), if the study has one."""
    first = [n for n in prefix_arm(config, runs, student, length) if runs[n].seed == seeds(config)[0]]
    return first[0] if first else None


def kl_prefix_arms(config: dict[str, Any], runs: dict[str, RunSpec]) -> dict[str, list[str]]:
    """Findings 2-3: per main student, its prefix-OPD runs (every seed) at experiments.windows.prefix, else at
    experiments.lr_sweep.prefix (the paper's 1024 for both); students with neither are left out."""
    lengths = [config["experiments"]["windows"]["prefix"], config["experiments"]["lr_sweep"]["prefix"]]
    out = {}
    for student in config["experiments"]["main"]["students"]:
        found = [arm for arm in (prefix_arm(config, runs, student, n) for n in lengths) if arm]
        if found:
            out[student] = found[0]
    return out


def kl_prefix_runs(config: dict[str, Any], runs: dict[str, RunSpec]) -> dict[str, str]:
    """Fig. 5: the first-seed run of each student's `kl_prefix_arms`."""
    return {student: arm[0] for student, arm in kl_prefix_arms(config, runs).items()}


def full_opd_run(config: dict[str, Any], student: str) -> str:
    """The full-OPD run of `student` at the first training seed."""
    return next(r.name for r in main_runs(config, student, seeds(config)[0]).values() if r.method == "opd")


def window_rows(config: dict[str, Any], runs: dict[str, RunSpec]) -> list[tuple[str, str]]:
    """Table 3's rows as (paper method name, run): full OPD, the prefix run ([0, L) window) and each window."""
    w = config["experiments"]["windows"]
    p = functools.partial(paper_length, config)
    full = full_opd_run(config, w["student"])
    prefix = prefix_run(config, runs, w["student"], w["prefix"])
    if full not in runs or prefix is None:
        raise ValueError(f"Table 3 compares the windows with the full-OPD and prefix-{w['prefix']} runs of student "
                         f"'{w['student']}': put the student in experiments.main.students and the prefix in "
                         "experiments.main.prefix_lengths (or experiments.lr_sweep at training.lr)")
    rows = [("opd", full), (f"opd_prefix_{p(w['prefix'])}", prefix)]
    for r in window_runs(config).values():
        if r.window is not None:
            rows.append((f"opd_window_{p(r.window[0])}_{p(r.window[1])}", r.name))
        else:
            rows.append((f"opd_window_tail_{p(r.tail)}", r.name))
    return rows


def gkd_grid(config: dict[str, Any]) -> dict[tuple[int, int, float], str]:
    """Fig. 6's runs by (lambda, beta, lr)."""
    return {(r.gkd_lambda, r.gkd_beta, r.lr): r.name for r in gkd_runs(config).values()}


def gkd_chosen_lr(grid: dict[tuple[int, int, float], str], chosen_dev: dict[str, float]) -> float:
    """Sec. 5.3 picks one learning rate for prefix GKD: the lr whose four (lambda, beta) runs have the best mean
    dev-chosen accuracy (`grid`: `gkd_grid`; `chosen_dev`: run -> dev mean@k at its chosen step); ties go to the
    smallest lr."""
    by_lr: dict[float, list[float]] = {}
    for (_lam, _beta, lr), run in grid.items():
        by_lr.setdefault(lr, []).append(chosen_dev[run])
    return max(sorted(by_lr), key=lambda lr: sum(by_lr[lr]) / len(by_lr[lr]))


# ------------------------------------------------------------------------------------------------
# Table 3: the window ablation


def window_spec(config: dict[str, Any]) -> dict[str, Any]:
    """What Table 3 shows: its rows (paper method, run), the dev set and the steps (the job's only config)."""
    w = config["experiments"]["windows"]
    return {"rows": window_rows(config, expand_runs(config)), "dev": config["dev_benchmark"], "steps": w["steps"],
            "student": w["student"], "save_every": config["training"]["save_every"]}


def window_table(spec: dict[str, Any], curves: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Dev accuracy (%) of each Table 3 row at experiments.windows.steps, read from the runs' dev curves."""
    dev = spec["dev"]
    out = []
    for method, run in spec["rows"]:
        curve = curves[run]
        rows = curve[curve["benchmark"] == dev].set_index("step")
        rec: dict[str, Any] = {"method": method, "run": run}
        for step in spec["steps"]:
            if step not in rows.index:
                raise ValueError(f"{paths.at(paths.CURVE, run=run)}: no {dev} row at step {step}; "
                                 "experiments.windows.steps must be "
                                 f"saved checkpoints (multiples of training.save_every = {spec['save_every']})")
            rec[f"step_{step}"] = 100 * float(rows.loc[step, "mean_at_k"])
        out.append(rec)
    return pd.DataFrame(out)


def paper_ablations(table: int) -> pd.DataFrame:
    return pd.read_csv(PAPER_DIR / "reference_ablations.csv").query("table == @table")


def window_markdown(ours: pd.DataFrame, paper: pd.DataFrame, dev: str, title: str) -> str:
    """Ours [paper] per step; **best** among the masking strategies (every row but full OPD), as the paper."""
    steps = [c for c in ours.columns if c.startswith("step_")]
    ref = paper.pivot_table(index="method", columns="step", values="aime24") if not paper.empty else None
    masked = ours["method"] != "opd"
    marks = {c: dict(zip(ours.index[masked], mark_best(ours.loc[masked, c]), strict=True)) for c in steps}
    lines = [f"### {title}", "", f"Mean accuracy (%) on the dev set ({dev}), ours [paper]; **best** among the "
             "masking strategies (full OPD excluded, as in the paper).", "",
             "| method | run | " + " | ".join(s.replace("_", " ") for s in steps) + " |",
             "|" + "---|" * (len(steps) + 2)]
    for i, r in ours.iterrows():
        cells = []
        for c in steps:
            v = f"{r[c]:.1f}"
            v = f"**{v}**" if marks[c].get(i) == "best" else v
            step = int(c.removeprefix("step_"))
            if ref is not None and r["method"] in ref.index and step in ref.columns:
                v += f" [{ref.loc[r['method'], step]:.1f}]"
            cells.append(v)
        lines.append(f"| {r['method']} | {r['run']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# Table 4: learning rate vs out-of-domain accuracy at matched dev accuracy

OOD_COLUMNS = ["mmlu_pro", "gpqa"]


def lr_runs(config: dict[str, Any]) -> list[str]:
    return list(lr_sweep_runs(config))


def lr_spec(config: dict[str, Any]) -> dict[str, Any]:
    """What Table 4 shows: the sweep's runs and learning rates, its student and the dev set."""
    return {"dev": config["dev_benchmark"], "student": config["experiments"]["lr_sweep"]["student"],
            "runs": [(run, r.lr) for run, r in lr_sweep_runs(config).items()]}


def lr_table(spec: dict[str, Any], match: dict[str, dict[str, Any]], student_name: str) -> pd.DataFrame:
    """The base row, then one row per learning rate at its matched step (`match`: lr_match.json), from the
    full-suite summaries; `dev_curve` is the dev accuracy the match was made on."""
    dev = spec["dev"]
    rows = [("base", base_run(spec["student"]), 0, float("nan"), float("nan"))]
    rows += [("opd_prefix", run, match[run]["step"], lr, match[run]["dev_mean_at_k"]) for run, lr in spec["runs"]]
    out = []
    for method, run, step, lr, dev_curve in rows:
        summary = pd.read_csv(paths.at(paths.SUITE_SUMMARY, run=run, step=step)).set_index("benchmark")
        rec = {"student": student_name, "method": method, "run": run, "lr": lr, "step": step,
               "dev": 100 * float(summary.loc[dev, "mean_at_k"]), "dev_curve": 100 * dev_curve}
        for b in OOD_COLUMNS:
            rec[b] = 100 * float(summary.loc[b, "mean_at_k"]) if b in summary.index else float("nan")
        out.append(rec)
    return pd.DataFrame(out)


def lr_markdown(ours: pd.DataFrame, paper: pd.DataFrame, dev: str, target: float, title: str) -> str:
    """Ours [paper]; the paper's lr rows are matched to ours by rank (largest lr first)."""
    ref_lr = paper[paper["method"] != "base"].assign(lr=lambda f: f["lr"].astype(float)).sort_values(
        "lr", ascending=False)
    ours_lr = ours[ours["method"] != "base"].sort_values("lr", ascending=False)
    ref_by_run = dict(zip(ours_lr["run"], [r for _, r in ref_lr.iterrows()], strict=False))
    base_ref = paper[paper["method"] == "base"]
    if not base_ref.empty:
        ref_by_run[ours.loc[ours["method"] == "base", "run"].iloc[0]] = base_ref.iloc[0]
    trained = ours["method"] != "base"
    marks = {c: dict(zip(ours.index[trained], mark_best(ours.loc[trained, c]), strict=True)) for c in OOD_COLUMNS}
    lines = [f"### {title}", "", f"Accuracy in % (ours) [paper]. Checkpoints matched on the dev set ({dev}): target "
             f"= the lowest of the runs' best dev accuracies ({100 * target:.1f}%), then for each lr the earliest "
             "checkpoint within the tolerance. Paper rows are matched by lr rank. **best** among the lrs.", "",
             f"| row | {dev} (control, suite) | {dev} (dev curve) | " + " | ".join(OOD_COLUMNS) + " |",
             "|---|---|---|" + "---|" * len(OOD_COLUMNS)]
    for i, r in ours.iterrows():
        ref = ref_by_run.get(r["run"])
        label = f"step {r['step']}" if r["method"] == "base" else f"lr={r['lr']:.0e}, step {r['step']}"
        if ref is not None and r["method"] != "base":
            label += f" [paper lr={float(ref['lr']):.0e}, step {int(ref['step'])}]"
        cells = []
        for c in ("dev", "dev_curve", *OOD_COLUMNS):
            v = "-" if pd.isna(r[c]) else f"{r[c]:.1f}"
            if marks.get(c, {}).get(i) == "best":
                v = f"**{v}**"
            paper_col = "aime24" if c == "dev" else c
            if ref is not None and c != "dev_curve" and pd.notna(ref.get(paper_col)):
                v += f" [{float(ref[paper_col]):.1f}]"
            cells.append(v)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# Tables 3 and 4 end to end (what the workflow's scripts call)


def write_window_table(spec: dict[str, Any], files: tuple[str, str, str]) -> pd.DataFrame:
    """Table 3 (`window_spec`) from the runs' dev curves, into `files` (csv, md, tex)."""
    curves = {run: pd.read_csv(paths.at(paths.CURVE, run=run)) for _method, run in spec["rows"]}
    ours = window_table(spec, curves)
    title = (f"Table 3: masking-window ablation, student '{spec['student']}', dev accuracy ({spec['dev']}) "
             "at fixed steps")
    write_table(ours, files, window_markdown(ours, paper_ablations(3), spec["dev"], title),
                ours.to_latex(index=False, float_format="%.1f", caption=title))
    return ours


def write_lr_table(spec: dict[str, Any], match: dict[str, dict[str, Any]], files: tuple[str, str, str]
                   ) -> pd.DataFrame:
    """Table 4 (`lr_spec`) from the full-suite summaries at the matched steps (`match`: lr_match.json)."""
    ours = lr_table(spec, match, spec["student"])
    target = next(iter(match.values()))["target"]
    title = f"Table 4: learning rate vs out-of-domain accuracy at matched dev accuracy, student '{spec['student']}'"
    write_table(ours, files, lr_markdown(ours, paper_ablations(4), spec["dev"], target, title),
                ours.to_latex(index=False, float_format="%.1f", caption=title, na_rep="-"))
    return ours
