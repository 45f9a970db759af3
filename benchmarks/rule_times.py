"""wall time per rule of the default run, from Snakemake's `benchmark:` files.

Sums results/benchmarks/**/*.tsv by rule (the file name's prefix) and writes results/bench/rule_times.csv
and a Markdown table (results/bench/rule_times.md) for the README.

    python benchmarks/rule_times.py
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def rule_name(path: Path) -> str:
    rel = path.relative_to("results/benchmarks")
    if rel.parts[0] == "train":
        return "train"
    if rel.parts[0] == "eval":
        return "eval_suite" if "_step" in rel.stem else "eval_run"
    if rel.parts[0] == "analysis":
        return rel.stem
    return rel.stem.split("_")[0] if rel.stem.startswith("pretrain") else rel.stem


def main() -> None:
    rows = []
    for tsv in Path("results/benchmarks").rglob("*.tsv"):
        frame = pd.read_csv(tsv, sep="\t")
        rows.append({"rule": rule_name(tsv), "seconds": float(frame["s"].iloc[0]),
                     "cpu_seconds": float(frame["cpu_time"].iloc[0])})
    grouped = pd.DataFrame(rows).groupby("rule")
    table = grouped.agg(jobs=("seconds", "size"), wall_s=("seconds", "sum"), cpu_s=("cpu_seconds", "sum"))
    table = table.sort_values("wall_s", ascending=False)
    table.loc["total"] = table.sum()
    Path("results/bench").mkdir(parents=True, exist_ok=True)
    table.round(1).to_csv("results/bench/rule_times.csv")
    Path("results/bench/rule_times.md").write_text(table.round(1).to_markdown() + "\n")
    print(table.round(1).to_string())


if __name__ == "__main__":
    main()
