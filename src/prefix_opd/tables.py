"""Which (run, step) each table row reports, and the tables themselves (csv, md, tex).

Row specs are plain data derived from config, so the workflow asks for exactly the evaluations a
table needs and the aggregation reads them back by the same rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .runs import RunSpec, gkd_runs, lr_sweep_runs, main_runs, seqkd_prefix_runs, window_runs

PAPER_DIR = Path(__file__).resolve().parents[2] / "config" / "paper_reference"
BENCH_COLUMNS = ["math500", "aime24", "aime25", "gpqa", "mmlu_pro"]
CHOSEN = -1  # step placeholder: the dev-chosen checkpoint


@dataclass(frozen=True)
class Row:
    method: str  # the paper's row name (reference_results.csv)
    run: str
    step: int  # CHOSEN or a fixed step (0 for the base model)
    budget: str  # none / limited / sufficient


def scale(config: dict[str, Any]) -> int:
    return config["toy"]["scale"] if config["world"] == "toy" else 1


def base_run(student: str) -> str:
    return f"{student}-base"


def main_rows(config: dict[str, Any], student: str) -> list[Row]:
    """Tables 1-2: base, the two limited-budget baselines, prefix OPD, and the sufficient-budget runs."""
    runs = main_runs(config, student)
    by_method = {r.method: r for r in runs.values() if r.method != "opd_prefix"}
    s = scale(config)
    rows = [Row("base", base_run(student), 0, "none"),
            Row(f"opd_{config['training']['save_every']}_steps", by_method["opd"].name,
                config["training"]["save_every"], "limited"),
            Row(f"seqkd_{config['training']['seqkd']['short_steps']}_steps", by_method["seqkd"].name,
                config["training"]["seqkd"]["short_steps"], "limited")]
    rows += [Row(f"opd_prefix_{r.l_train * s}", r.name, CHOSEN, "limited")
             for r in runs.values() if r.method == "opd_prefix"]
    rows += [Row(m, by_method[m].name, CHOSEN, "sufficient") for m in ("opd", "seqkd", "opd_schedule")]
    return rows


def fig7_runs(config: dict[str, Any], runs: dict[str, RunSpec]) -> list[str]:
    """Fig. 7: prefix SeqKD runs and the prefix-OPD run at the same length, all on math500 too."""
    sp = config["experiments"]["seqkd_prefix"]
    names = list(seqkd_prefix_runs(config))
    overlay = [r.name for r in main_runs(config, sp["student"]).values()
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


def resolve_step(row: Row, chosen: dict[str, int]) -> int:
    return chosen[row.run] if row.step == CHOSEN else row.step


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
    """Accuracy (%) per benchmark plus cumulative FLOPs and hours for each row."""
    out = []
    for row in rows:
        step = resolve_step(row, chosen)
        summary = pd.read_csv(suite_summary_path(row.run, step)).set_index("benchmark")
        metrics = None if row.step == 0 and row.method == "base" else f"results/runs/{row.run}/metrics.csv"
        flops, hours = cost_at(metrics, step)
        rec = {"table": table, "student": student_name, "method": row.method, "budget": row.budget,
               "run": row.run, "step": step}
        for b in BENCH_COLUMNS:
            rec[b] = 100 * float(summary.loc[b, "mean_at_k"]) if b in summary.index else float("nan")
        rec |= {"flops": flops, "hours": hours}
        out.append(rec)
    return pd.DataFrame(out)


def suite_summary_path(run: str, step: int) -> str:
    return f"results/eval/{run}/step_{step}/summary.csv"


def read_chosen(paths: list[str]) -> dict[str, int]:
    """{run: step} from the choose_step outputs (results/eval/<run>/chosen.json)."""
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
    head = "| method | step | " + " | ".join(BENCH_COLUMNS) + " | FLOPs | hours |"
    lines = [f"### {title}", "", "Accuracy in % (ours) [paper]; **best** and <u>second</u> among limited budgets.",
             "", head, "|" + "---|" * (len(BENCH_COLUMNS) + 4)]
    ref = paper.set_index("method") if paper is not None else None
    for i, r in ours.iterrows():
        cells = []
        for b in BENCH_COLUMNS:
            v = f"{r[b]:.1f}"
            mark = marks[b].get(i, "")
            v = f"**{v}**" if mark == "best" else f"<u>{v}</u>" if mark == "second" else v
            if ref is not None and r["method"] in ref.index and pd.notna(ref.loc[r["method"], b]):
                v += f" [{ref.loc[r['method'], b]:.1f}]"
            cells.append(v)
        flops = "-" if pd.isna(r["flops"]) else f"{r['flops']:.2e}"
        hours = "-" if pd.isna(r["hours"]) else f"{r['hours']:.4f}"
        lines.append(f"| {r['method']} | {r['step']} | " + " | ".join(cells) + f" | {flops} | {hours} |")
    return "\n".join(lines) + "\n"


def to_latex(ours: pd.DataFrame, caption: str) -> str:
    cols = ["method", "step", *BENCH_COLUMNS, "flops", "hours"]
    frame = ours[cols].copy()
    return frame.to_latex(index=False, float_format="%.1f", caption=caption, na_rep="-")


def write_table(frame: pd.DataFrame, stem: str, markdown: str, latex: str) -> None:
    Path(stem).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(f"{stem}.csv", index=False)
    Path(f"{stem}.md").write_text(markdown)
    Path(f"{stem}.tex").write_text(latex)


def paper_reference(table: int) -> pd.DataFrame:
    return pd.read_csv(PAPER_DIR / "reference_results.csv").query("table == @table")
