"""The benchmarks' figure: results/bench/benchmarks.png (and .pdf) from the CSVs the other scripts write.

Four panels: OPD step throughput against TRL (with the 2x target), prefix against full OPD (measured
speed-up and FLOP ratio per L_train), sampling throughput per engine, and the default run's wall time per
rule. A panel whose CSV is missing names the command that writes it.

    python benchmarks/plot.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

BENCH = Path("results/bench")


def _read(name: str, ax: plt.Axes, command: str) -> pd.DataFrame | None:
    path = BENCH / name
    if path.is_file():
        return pd.read_csv(path)
    ax.text(0.5, 0.5, f"{path} missing:\nrun {command}", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return None


def opd_vs_trl(ax: plt.Axes) -> None:
    df = _read("opd_vs_trl.csv", ax, "python benchmarks/opd_vs_trl.py")
    if df is None:
        return
    sns.barplot(df, x="engine", y="tokens_per_s", hue="engine", ax=ax, palette=["#1f77b4", "#999999"])
    trl = float(df.loc[df.engine == "trl", "tokens_per_s"].iloc[0])
    native = float(df.loc[df.engine == "native", "tokens_per_s"].iloc[0])
    ax.axhline(2 * trl, ls="--", c="k", lw=1, label="target: 2x TRL")
    ax.set_ylim(0, 1.2 * max(native, 2 * trl))
    ax.set(xlabel="", ylabel="rollout tokens / s (whole step)",
           title=f"OPD step throughput: native {native / trl:.2f}x TRL")
    ax.legend(loc="upper right", fontsize=8)


def prefix_vs_full(ax: plt.Axes) -> None:
    df = _read("prefix_vs_full.csv", ax, "python benchmarks/prefix_vs_full.py")
    if df is None:
        return
    df = df[df.speedup_vs_full > 1.0 - 1e-9].sort_values("l_train")
    ax.plot(df.l_train, df.speedup_vs_full, "o-", label="measured wall-time speed-up")
    ax.plot(df.l_train, df.flop_ratio_vs_full, "s--", label="FLOP ratio")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="L_train (tokens)", ylabel="x full OPD", title="Prefix vs full OPD, per step")
    ax.legend(fontsize=8)


def sampling(ax: plt.Axes) -> None:
    df = _read("sampling.csv", ax, "python benchmarks/sampling_hf_vs_vllm.py")
    if df is None:
        return
    sns.barplot(df, x="engine", y="tokens_per_s", hue="engine", ax=ax, legend=False)
    ax.set(xlabel="", ylabel="generated tokens / s",
           title=f"Sampling, {int(df.prompts.iloc[0])} prompts x {int(df.n.iloc[0])}")


def rule_times(ax: plt.Axes) -> None:
    df = _read("rule_times.csv", ax, "python benchmarks/rule_times.py")
    if df is None:
        return
    df = df[df.rule != "total"].sort_values("wall_s", ascending=False)
    sns.barplot(df, y="rule", x="wall_s", hue="rule", ax=ax, legend=False)
    ax.set(xlabel="summed job wall time (s)", ylabel="", title="Default run: time per rule")


def main() -> None:
    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.9)
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for panel, ax in zip((opd_vs_trl, prefix_vs_full, sampling, rule_times), axes.flat, strict=True):
        panel(ax)
    fig.tight_layout()
    BENCH.mkdir(parents=True, exist_ok=True)
    for suffix in (".png", ".pdf"):
        fig.savefig(BENCH / f"benchmarks{suffix}", dpi=150, bbox_inches="tight")
    print(f"wrote {BENCH / 'benchmarks.png'} and .pdf")


if __name__ == "__main__":
    main()
