"""Accuracy per FLOP: every main arm (full OPD, SeqKD, each fixed prefix, each schedule of
`experiments.main.schedules`) as dev accuracy against cumulative training FLOPs, and the FLOPs each needs to
reach a stated fraction (`experiments.main.reach`) of full OPD's final dev accuracy.

`spec(config)` holds everything the table and its figure show (the jobs' only config); the curves are read from
each run's dev curve (`curve.csv`) and `metrics.csv` (`flops_cum` includes an adaptive schedule's signal cost).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from . import paths, schedules, tables
from .runs import RunSpec, arm_key, arms, main_runs


def arm_label(run: RunSpec, config: dict[str, Any]) -> str:
    """A legend entry: `full OPD`, `SeqKD`, `prefix OPD, L=7 (≙256)`, `schedule linear`, ..."""
    if run.method == "opd_prefix":
        paper = tables.paper_lengths(config).get(int(run.l_train))
        return f"prefix OPD, L={run.l_train}" + (f" (≙{paper})" if paper else "")
    if run.method == "opd_schedule" and run.schedule:
        kind = "" if run.schedule["kind"] == run.schedule["name"] else f" ({run.schedule['kind']})"
        return f"schedule {run.schedule['name']}{kind}"
    return {"opd": "full OPD", "seqkd": "SeqKD"}[run.method]


def spec(config: dict[str, Any]) -> dict[str, Any]:
    """Per student, its main arms as (arm key, label, runs); the dev set; the reach fraction; the schedules."""
    students = []
    for student in config["experiments"]["main"]["students"]:
        runs = main_runs(config, student)
        students.append((student, [(arm_key(runs[names[0]]), arm_label(runs[names[0]], config), names)
                                   for names in arms(runs).values()]))
    main = config["experiments"]["main"]
    return {"dev": config["dev_benchmark"], "reach": float(main["reach"]), "students": students,
            "schedules": [schedules.describe(s) for s in main["schedules"]]}


def inputs(spec: dict[str, Any]) -> list[str]:
    return [f for _student, student_arms in spec["students"] for _k, _l, names in student_arms for n in names
            for f in (paths.at(paths.CURVE, run=n), paths.at(paths.METRICS, run=n))]


def run_curve(run: str, dev: str) -> pd.DataFrame:
    """step, accuracy (%), flops_cum and signal_flops_cum of one run at each saved checkpoint."""
    curve = pd.read_csv(paths.at(paths.CURVE, run=run))
    rows = curve[curve["benchmark"] == dev].sort_values("step")
    if rows.empty:
        raise ValueError(f"{paths.at(paths.CURVE, run=run)} has no '{dev}' rows")
    metrics = pd.read_csv(paths.at(paths.METRICS, run=run))
    signal = metrics["signal_flops"] if "signal_flops" in metrics else pd.Series(0.0, index=metrics.index)
    metrics = metrics.assign(signal_flops_cum=signal.fillna(0.0).cumsum())[["step", "flops_cum", "signal_flops_cum"]]
    out = pd.DataFrame({"step": rows["step"].to_numpy(), "accuracy": 100 * rows["mean_at_k"].to_numpy()})
    return out.merge(metrics, on="step", how="left")


def first_reach(curve: pd.DataFrame, target: float) -> float:
    """Cumulative FLOPs at the first checkpoint whose accuracy reaches `target` (%); nan when none does."""
    hit = curve[curve["accuracy"] >= target]
    return float(hit["flops_cum"].iloc[0]) if not hit.empty else math.nan


def target(spec: dict[str, Any], student_arms: list[tuple[str, str, list[str]]]) -> float:
    """`reach` x full OPD's final dev accuracy (mean over its seeds), in %."""
    full = next(names for key, _label, names in student_arms if key == "opd")
    return spec["reach"] * float(pd.Series([run_curve(n, spec["dev"])["accuracy"].iloc[-1] for n in full]).mean())


def table(spec: dict[str, Any]) -> pd.DataFrame:
    """One row per (student, arm): final dev accuracy (seed mean and sd), total FLOPs, the seeds that reach the
    target and their mean FLOPs to reach it (also relative to full OPD's), and the FLOPs spent on schedule
    signals."""
    out = []
    for student, student_arms in spec["students"]:
        goal = target(spec, student_arms)
        rows = []
        for key, label, names in student_arms:
            curves = [run_curve(n, spec["dev"]) for n in names]
            final = pd.Series([c["accuracy"].iloc[-1] for c in curves])
            reach = pd.Series([first_reach(c, goal) for c in curves])
            rows.append({"student": student, "arm": key, "label": label, "seeds": len(names),
                         "final_dev": float(final.mean()),
                         "final_dev_sd": float(final.std(ddof=1)) if len(names) > 1 else math.nan,
                         "flops_total": float(pd.Series([c["flops_cum"].iloc[-1] for c in curves]).mean()),
                         "signal_flops": float(pd.Series([c["signal_flops_cum"].iloc[-1] for c in curves]).mean()),
                         "target": goal, "reached": int(reach.notna().sum()),
                         "flops_to_reach": float(reach.mean()) if reach.notna().all() else math.nan,
                         "flops_to_reach_sd": float(reach.std(ddof=1)) if reach.notna().all() and len(names) > 1
                         else math.nan})
        full = next(r["flops_to_reach"] for r in rows if r["arm"] == "opd")
        out += [r | {"vs_full_opd": r["flops_to_reach"] / full if full and not math.isnan(full) else math.nan}
                for r in rows]
    return pd.DataFrame(out)


def markdown(frame: pd.DataFrame, spec: dict[str, Any]) -> str:
    lines = [f"### Accuracy per FLOP: every schedule, the fixed prefixes, full OPD and SeqKD ({spec['dev']})", "",
             f"Target: {spec['reach']:.0%} of full OPD's final dev accuracy (mean over its seeds). FLOPs to reach: the "
             "cumulative training FLOPs at each seed's first saved checkpoint at or above the target, mean ± sd over "
             "seeds (shown only when every seed reaches it). FLOPs include what an adaptive schedule spends measuring "
             "its signal (`signal FLOPs`). Schedules: " + "; ".join(spec["schedules"]) + ".", ""]
    for student, group in frame.groupby("student", sort=False):
        lines += [f"**{student} student** (target {group['target'].iloc[0]:.1f}%)", "",
                  "| arm | seeds | final dev (%) | FLOPs (total) | reached | FLOPs to reach | vs full OPD | "
                  "signal FLOPs |", "|---|---|---|---|---|---|---|---|"]
        for _, r in group.iterrows():
            final = f"{r['final_dev']:.1f}" + (f" ± {r['final_dev_sd']:.1f}" if pd.notna(r["final_dev_sd"]) else "")
            reach = "-" if pd.isna(r["flops_to_reach"]) else f"{r['flops_to_reach']:.2e}" + (
                f" ± {r['flops_to_reach_sd']:.1e}" if pd.notna(r["flops_to_reach_sd"]) else "")
            ratio = "-" if pd.isna(r["vs_full_opd"]) else f"{r['vs_full_opd']:.2f}x"
            signal = f"{r['signal_flops']:.1e}" if r["signal_flops"] else "0"
            lines.append(f"| {r['label']} | {r['seeds']} | {final} | {r['flops_total']:.2e} | "
                         f"{r['reached']}/{r['seeds']} | {reach} | {ratio} | {signal} |")
        lines.append("")
    return "\n".join(lines)


def write(spec: dict[str, Any], files: tuple[str, str, str]) -> pd.DataFrame:
    """The table into `files` (csv, md, tex)."""
    frame = table(spec)
    caption = f"Accuracy per FLOP ({spec['dev']}): FLOPs to reach {spec['reach']:.0%} of full OPD's final dev accuracy"
    cols = ["student", "label", "seeds", "final_dev", "final_dev_sd", "flops_total", "reached", "flops_to_reach",
            "vs_full_opd"]
    Path(files[0]).parent.mkdir(parents=True, exist_ok=True)
    tables.write_table(frame, files, markdown(frame, spec),
                       frame[cols].to_latex(index=False, float_format="%.3g", caption=caption, na_rep="-"))
    return frame
