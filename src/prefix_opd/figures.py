"""The paper's figures 2-8 from the pipeline's outputs (png + pdf each).

Each figure has `inputs(config)`, the files it reads (the workflow declares exactly these), and
`draw(config, png)`, which reads them by the same path helpers and writes `png` and the `.pdf` beside it.
Lengths are the run's own token counts; in the toy world the paper's value (`toy.paper_lengths`) is given alongside.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from . import tables
from .runs import arms, expand_runs, gkd_runs, lr_sweep_runs, main_runs, seqkd_prefix_runs


class _Lazy:
    """A plotting module imported on first use: the workflow imports this module at parse time only to list
    each figure's inputs, and matplotlib + seaborn would add seconds to every `snakemake` call."""

    def __init__(self, name: str):
        self._name = name
        self._module: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            importlib.import_module("matplotlib").use("Agg")
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


plt = _Lazy("matplotlib.pyplot")
sns = _Lazy("seaborn")
ticker = _Lazy("matplotlib.ticker")
PROBE = "results/probe/probe.csv"
STEP_PALETTE = "viridis"


def _step_ticks() -> Any:
    """Whole training steps at round values (10, 20, ...)."""
    return ticker.MaxNLocator(integer=True, steps=[1, 2, 5, 10])


METHOD_COLORS = {"opd": "black", "seqkd": "tab:orange", "opd_schedule": "tab:green"}
GKD_LABELS = {(1, 1): "on-policy, reverse KL (λ=1, β=1)", (1, 0): "on-policy, forward KL (λ=1, β=0)",
              (0, 1): "off-policy, reverse KL (λ=0, β=1)", (0, 0): "off-policy, forward KL (λ=0, β=0)"}
GKD_COLORS = {(1, 1): "tab:blue", (1, 0): "tab:cyan", (0, 1): "tab:red", (0, 0): "tab:orange"}


# ------------------------------------------------------------------------------------------------
# helpers


def _theme() -> None:
    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.95)


def _save(fig: plt.Figure, png: str) -> None:
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=150, bbox_inches="tight")
    fig.savefig(Path(png).with_suffix(".pdf"), bbox_inches="tight")
    plt.close(fig)


def _length(config: dict[str, Any], n: int) -> str:
    """A length as the run sees it, with the paper-scale equivalent in the toy world."""
    table = tables.paper_lengths(config)
    return f"{n} (≙{table[int(n)]})" if int(n) in table else f"{n}"


def _position_unit(config: dict[str, Any]) -> str:
    if config["world"] != "toy":
        return "response position (tokens)"
    return "response position (toy tokens; a 7-token line ≙ 256 paper tokens)"


def _student(config: dict[str, Any], student: str) -> str:
    return f"{student} student ({Path(config['models']['students'][student]).name})"


def _lr(lr: float) -> str:
    return f"lr={lr:.0e}"


def _dev_curve(config: dict[str, Any], run: str, bench: str | None = None) -> pd.DataFrame:
    """step, accuracy (%) of a run's dev (or `bench`) curve."""
    bench = bench or config["dev_benchmark"]
    curve = pd.read_csv(tables.curve_path(run))
    rows = curve[curve["benchmark"] == bench].sort_values("step")
    if rows.empty:
        raise ValueError(f"{tables.curve_path(run)} has no '{bench}' rows")
    return pd.DataFrame({"step": rows["step"].to_numpy(), "accuracy": 100 * rows["mean_at_k"].to_numpy()})


def _base_accuracy(config: dict[str, Any], student: str, bench: str | None = None) -> float:
    bench = bench or config["dev_benchmark"]
    summary = pd.read_csv(tables.suite_summary_path(tables.base_run(student), 0)).set_index("benchmark")
    return 100 * float(summary.loc[bench, "mean_at_k"])


def _accuracy_axes(ax: plt.Axes, steps: bool = True, data_max: float = 0.0) -> None:
    """Accuracy from 0 (at least 0-5%, so an all-zero toy curve is not drawn at float-noise scale);
    whole training steps on x."""
    top = max(5.0, ax.get_ylim()[1], 1.05 * data_max)
    ax.set_ylim(bottom=-0.02 * top, top=top)  # a hair below 0 so markers at 0% stay whole
    if steps:
        ax.xaxis.set_major_locator(_step_ticks())


def _base_line(ax: plt.Axes, accuracy: float) -> None:
    ax.axhline(accuracy, color="grey", linestyle="--", linewidth=1.2, label=f"base model ({accuracy:.1f}%)")


def _no_data(ax: plt.Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no data: {what}", ha="center", va="center", transform=ax.transAxes, color="grey")


def _acc_label(config: dict[str, Any], bench: str | None = None) -> str:
    bench = bench or config["dev_benchmark"]
    k = config["eval"]["samples"].get(bench, "k")
    return f"{bench} mean@{k} (%)"


def _kl_rows(run: str, source: str, steps: list[int]) -> pd.DataFrame:
    kl = tables.kl_bins(pd.read_csv(tables.kl_path(run)))
    rows = kl[(kl["source"] == source) & kl["step"].isin(steps)].copy()
    rows["position"] = (rows["bin_start"] + rows["bin_end"]) / 2
    rows["log step"] = rows["step"].map(lambda s: f"step {s}")
    return rows


def _kl_panel(ax: plt.Axes, rows: pd.DataFrame, steps: list[int]) -> None:
    order = [f"step {s}" for s in steps if s in set(rows["step"])]
    sns.lineplot(rows, x="position", y="kl_mean", hue="log step", hue_order=order, palette=STEP_PALETTE,
                 marker="o", markersize=3, linewidth=1.3, ax=ax)
    ax.axhline(0, color="grey", linewidth=0.6)


# ------------------------------------------------------------------------------------------------
# Fig. 2: reverse KL by position during full OPD


def fig2_inputs(config: dict[str, Any]) -> list[str]:
    return [tables.kl_path(tables.full_opd_run(config, s)) for s in config["experiments"]["main"]["students"]]


def fig2(config: dict[str, Any], png: str) -> None:
    _theme()
    students = config["experiments"]["main"]["students"]
    steps = config["training"]["log_steps"]
    fig, axes = plt.subplots(len(students), 1, figsize=(8, 3.4 * len(students)), sharex=True, squeeze=False)
    for ax, student in zip(axes[:, 0], students, strict=True):
        rows = _kl_rows(tables.full_opd_run(config, student), "train", steps)
        if rows.empty:
            _no_data(ax, f"no train KL rows at log steps {steps}")
        else:
            _kl_panel(ax, rows, steps)
        ax.set_title(_student(config, student))
        ax.set_ylabel("mean reverse KL per token (nats)")
        ax.set_xlabel(_position_unit(config))
    fig.suptitle(f"Fig. 2: reverse KL along the response during full OPD (bins of {config['training']['kl_bin']} "
                 "tokens, the step's own rollouts)")
    fig.tight_layout()
    _save(fig, png)


# ------------------------------------------------------------------------------------------------
# Fig. 3: untrained students continuing a teacher prefix


def fig3_inputs(config: dict[str, Any]) -> list[str]:
    return [PROBE]


def fig3(config: dict[str, Any], png: str) -> None:
    if not Path(PROBE).exists():
        raise FileNotFoundError(f"{PROBE} is missing: Fig. 3 needs the teacher_prefix_probe rule's output")
    _theme()
    probe = pd.read_csv(PROBE).sort_values(["student", "length"])
    probe["accuracy"] = 100 * probe["mean_at_k"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    palette = dict(zip(probe["student"].unique(), sns.color_palette("deep"), strict=False))
    for student, rows in probe.groupby("student", sort=False):
        ax.errorbar(rows["length"], rows["accuracy"], yerr=100 * rows["std_over_samples"], marker="o", capsize=3,
                    color=palette[student], label=_student(config, student) if student in
                    config["models"]["students"] else str(student))
    _accuracy_axes(ax, steps=False)
    k = int(probe["samples"].iloc[0]) if "samples" in probe else "k"
    ax.set_xlabel("teacher prefix length (tokens; 0 = no prefix)"
                  + ("" if config["world"] != "toy" else "; a 7-token line ≙ 256 paper tokens"))
    ax.set_ylabel(f"{config['dev_benchmark']} mean@{k} (%)")
    ax.set_title("Fig. 3: untrained students continuing the teacher's reasoning prefix\n"
                 "(error bars: std over sample sets)")
    ax.legend(title="student")
    fig.tight_layout()
    _save(fig, png)


# ------------------------------------------------------------------------------------------------
# Fig. 4: training compute vs dev accuracy


def _main_label(config: dict[str, Any], method: str, l_train: int | None) -> str:
    if method == "opd_prefix":
        return f"prefix OPD, L={_length(config, l_train)}"
    return {"opd": "full OPD", "seqkd": "SeqKD", "opd_schedule": "prefix OPD, linear schedule"}[method]


def fig4_inputs(config: dict[str, Any]) -> list[str]:
    out = []
    for s in config["experiments"]["main"]["students"]:
        out.append(tables.suite_summary_path(tables.base_run(s), 0))
        for run in main_runs(config, s):
            out += [tables.curve_path(run), tables.metrics_path(run)]
    return out


def _seed_mean_curve(config: dict[str, Any], names: list[str]) -> pd.DataFrame:
    """One arm's dev curve against cumulative FLOPs: the mean over its seeds' runs, `sd` their spread."""
    frames = [_dev_curve(config, n).merge(pd.read_csv(tables.metrics_path(n))[["step", "flops_cum"]], on="step")
              for n in names]
    by_step = pd.concat(frames).groupby("step")
    out = by_step[["accuracy", "flops_cum"]].mean()
    out["sd"] = by_step["accuracy"].std(ddof=1).fillna(0.0)
    return out.reset_index()


def fig4(config: dict[str, Any], png: str) -> None:
    _theme()
    students = config["experiments"]["main"]["students"]
    fig, axes = plt.subplots(len(students), 1, figsize=(8.5, 3.8 * len(students)), squeeze=False)
    for ax, student in zip(axes[:, 0], students, strict=True):
        runs = main_runs(config, student)
        prefixes = sorted({r.l_train for r in runs.values() if r.method == "opd_prefix"})
        blues = dict(zip(prefixes, sns.color_palette("Blues", len(prefixes) + 2)[2:], strict=True))
        for names in arms(runs).values():
            r = runs[names[0]]
            curve = _seed_mean_curve(config, names)
            color = blues[r.l_train] if r.method == "opd_prefix" else METHOD_COLORS[r.method]
            ax.plot(curve["flops_cum"], curve["accuracy"], marker="o", markersize=4, color=color,
                    linestyle="--" if r.method == "seqkd" else "-", label=_main_label(config, r.method, r.l_train))
            if len(names) > 1:
                ax.fill_between(curve["flops_cum"], curve["accuracy"] - curve["sd"], curve["accuracy"] + curve["sd"],
                                color=color, alpha=0.15, linewidth=0)
        _base_line(ax, _base_accuracy(config, student))
        _accuracy_axes(ax, steps=False)
        ax.set_xscale("log")
        ax.set_xlabel("cumulative training compute (FLOPs, log scale)")
        ax.set_ylabel(_acc_label(config))
        ax.set_title(_student(config, student))
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle("Fig. 4: training compute vs dev accuracy (one marker per saved checkpoint; mean over training "
                 "seeds, band ± 1 sd)")
    fig.tight_layout()
    _save(fig, png)


# ------------------------------------------------------------------------------------------------
# Fig. 5: reverse KL by position during prefix OPD (diagnostic full-length rollouts)


def fig5_inputs(config: dict[str, Any]) -> list[str]:
    return [tables.kl_path(run) for run in tables.kl_prefix_runs(config, expand_runs(config)).values()]


def fig5(config: dict[str, Any], png: str) -> None:
    _theme()
    runs = expand_runs(config)
    prefix_runs = tables.kl_prefix_runs(config, runs)
    steps = config["training"]["log_steps"]
    if not prefix_runs:
        raise ValueError("Fig. 5: no main student has a prefix-OPD run at experiments.windows.prefix or "
                         "experiments.lr_sweep.prefix (at training.lr)")
    lengths = sorted({runs[r].l_train for r in prefix_runs.values()})
    fig, axes = plt.subplots(len(prefix_runs), 1, figsize=(8, 3.4 * len(prefix_runs)), sharex=True, squeeze=False)
    for ax, (student, run) in zip(axes[:, 0], prefix_runs.items(), strict=True):
        length = runs[run].l_train
        rows = _kl_rows(run, "diagnostic", steps)
        if rows.empty:
            _no_data(ax, f"no diagnostic KL rows at log steps {steps}")
        else:
            _kl_panel(ax, rows, steps)
        ax.axvspan(0, length, color="tab:blue", alpha=0.07)
        ax.axvline(length, color="tab:red", linestyle=":", linewidth=1.5, label=f"prefix L={_length(config, length)}")
        ax.legend(fontsize=8)
        ax.set_title(_student(config, student))
        ax.set_ylabel("mean reverse KL per token (nats)")
        ax.set_xlabel(_position_unit(config))
    shown = ", ".join(_length(config, n) for n in lengths)
    fig.suptitle(f"Fig. 5: reverse KL along full-length rollouts during prefix OPD (L={shown}; "
                 "shaded = trained prefix)")
    fig.tight_layout()
    _save(fig, png)


# ------------------------------------------------------------------------------------------------
# Fig. 6: prefix GKD, lambda x beta


def fig6_inputs(config: dict[str, Any]) -> list[str]:
    runs = list(gkd_runs(config))
    student = config["experiments"]["gkd"]["student"]
    return ([tables.curve_path(r) for r in runs] + [tables.chosen_path(r) for r in runs]
            + [tables.suite_summary_path(tables.base_run(student), 0)])


def _gkd_panel(config: dict[str, Any], ax: plt.Axes, lr: float, base: float) -> None:
    for (lam, beta, run_lr), run in sorted(tables.gkd_grid(config).items(), reverse=True):
        if run_lr == lr:
            curve = _dev_curve(config, run)
            ax.plot(curve["step"], curve["accuracy"], marker="o", markersize=4, color=GKD_COLORS[(lam, beta)],
                    label=GKD_LABELS[(lam, beta)])
    _base_line(ax, base)
    _accuracy_axes(ax)
    ax.set_xlabel("training step")
    ax.set_ylabel(_acc_label(config))


def fig6(config: dict[str, Any], png: str) -> None:
    _theme()
    g = config["experiments"]["gkd"]
    chosen_dev = {r: json.loads(Path(tables.chosen_path(r)).read_text())["dev_mean_at_k"] for r in gkd_runs(config)}
    chosen = tables.gkd_chosen_lr(config, chosen_dev)
    base = _base_accuracy(config, g["student"])
    panels = [chosen, *g["lrs"]]
    ncols = 2
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.2 * ncols, 3.9 * nrows), squeeze=False, sharey=True)
    for i, lr in enumerate(panels):
        ax = axes.flat[i]
        _gkd_panel(config, ax, lr, base)
        ax.set_title(f"chosen {_lr(lr)} (best mean dev accuracy)" if i == 0 else f"sweep: {_lr(lr)}",
                     fontweight="bold" if i == 0 else "normal")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=9, bbox_to_anchor=(0.5, 0.0))
    fig.suptitle(f"Fig. 6: prefix GKD (L={_length(config, g['prefix'])}), {_student(config, g['student'])}: "
                 "on-/off-policy data (λ) x reverse/forward KL (β)")
    fig.tight_layout(rect=(0, 0.09 / nrows, 1, 1))
    _save(fig, png)


# ------------------------------------------------------------------------------------------------
# Fig. 7: prefix SeqKD vs prefix OPD


def fig7_inputs(config: dict[str, Any]) -> list[str]:
    student = config["experiments"]["seqkd_prefix"]["student"]
    return ([tables.curve_path(r) for r in tables.fig7_runs(config, expand_runs(config))]
            + [tables.suite_summary_path(tables.base_run(student), 0)])


def fig7(config: dict[str, Any], png: str) -> None:
    _theme()
    sp = config["experiments"]["seqkd_prefix"]
    seqkd = seqkd_prefix_runs(config)
    overlay = [r for r in tables.fig7_runs(config, expand_runs(config)) if r not in seqkd]
    benches = list(dict.fromkeys([config["dev_benchmark"], "math500"]))
    fig, axes = plt.subplots(len(benches), 1, figsize=(8.5, 3.9 * len(benches)), squeeze=False)
    colors = dict(zip(seqkd, sns.color_palette("Oranges_r", len(seqkd) + 1), strict=False))
    for ax, bench in zip(axes[:, 0], benches, strict=True):
        base = _base_accuracy(config, sp["student"], bench)
        data_max = base
        for run, spec in seqkd.items():
            curve = pd.concat([pd.DataFrame({"step": [0], "accuracy": [base]}), _dev_curve(config, run, bench)])
            ax.plot(curve["step"], curve["accuracy"], marker="o", markersize=4, color=colors[run],
                    label=f"prefix SeqKD, {_lr(spec.lr)} (bottom axis)")
            data_max = max(data_max, curve["accuracy"].max())
        _base_line(ax, base)
        ax.set_xlabel("prefix SeqKD training step")
        ax.set_ylabel(_acc_label(config, bench))
        handles, labels = ax.get_legend_handles_labels()
        if overlay:
            top = ax.twiny()
            top.grid(False)
            for run in overlay:
                curve = pd.concat([pd.DataFrame({"step": [0], "accuracy": [base]}), _dev_curve(config, run, bench)])
                top.plot(curve["step"], curve["accuracy"], marker="s", markersize=4, color="tab:blue",
                         label=f"prefix OPD, L={_length(config, sp['prefix'])} (top axis)")
                data_max = max(data_max, curve["accuracy"].max())
            top.xaxis.set_major_locator(_step_ticks())
            top.set_xlabel("prefix OPD training step", color="tab:blue")
            top.tick_params(axis="x", colors="tab:blue")
            h2, l2 = top.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        _accuracy_axes(ax, data_max=data_max)
        ax.legend(handles, labels, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
        ax.set_title(bench, loc="left", fontweight="bold")
    note = "" if overlay else f"\n(no prefix-OPD run at L={sp['prefix']} in experiments.main to overlay)"
    fig.suptitle(f"Fig. 7: prefix SeqKD (responses cut to {_length(config, sp['prefix'])} tokens), "
                 f"{_student(config, sp['student'])}; step 0 = base model{note}")
    fig.tight_layout()
    _save(fig, png)


# ------------------------------------------------------------------------------------------------
# Fig. 8: learning-rate sweep of prefix OPD


def fig8_inputs(config: dict[str, Any]) -> list[str]:
    student = config["experiments"]["lr_sweep"]["student"]
    return ([tables.curve_path(r) for r in lr_sweep_runs(config)] + [tables.LR_MATCH]
            + [tables.suite_summary_path(tables.base_run(student), 0)])


def fig8(config: dict[str, Any], png: str) -> None:
    _theme()
    s = config["experiments"]["lr_sweep"]
    match = json.loads(Path(tables.LR_MATCH).read_text())
    base = _base_accuracy(config, s["student"])
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    specs = lr_sweep_runs(config)
    colors = dict(zip(specs, sns.color_palette("rocket", len(specs)), strict=True))
    for run, spec in specs.items():
        curve = pd.concat([pd.DataFrame({"step": [0], "accuracy": [base]}), _dev_curve(config, run)])
        ax.plot(curve["step"], curve["accuracy"], marker="o", markersize=4, color=colors[run], label=_lr(spec.lr))
        if run in match:
            ax.plot([match[run]["step"]], [100 * match[run]["dev_mean_at_k"]], marker="*", markersize=15,
                    color=colors[run], markeredgecolor="black", linestyle="none")
    ax.plot([], [], marker="*", markersize=12, color="white", markeredgecolor="black", linestyle="none",
            label="Table 4 matched checkpoint")
    _base_line(ax, base)
    _accuracy_axes(ax)
    ax.set_xlabel("training step (0 = base model)")
    ax.set_ylabel(_acc_label(config))
    ax.legend(title="learning rate", fontsize=9, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title(f"Fig. 8: learning-rate sweep of prefix OPD (L={_length(config, s['prefix'])}), "
                 f"{_student(config, s['student'])}")
    fig.tight_layout()
    _save(fig, png)


FIGURES: dict[str, tuple[Callable[[dict[str, Any]], list[str]], Callable[[dict[str, Any], str], None]]] = {
    "fig2": (fig2_inputs, fig2), "fig3": (fig3_inputs, fig3), "fig4": (fig4_inputs, fig4),
    "fig5": (fig5_inputs, fig5), "fig6": (fig6_inputs, fig6), "fig7": (fig7_inputs, fig7),
    "fig8": (fig8_inputs, fig8),
}


def inputs(name: str, config: dict[str, Any]) -> list[str]:
    """The files figure `name` reads."""
    if name not in FIGURES:
        raise ValueError(f"Unknown figure '{name}'; choose from {sorted(FIGURES)}")
    return FIGURES[name][0](config)


def draw(name: str, config: dict[str, Any], png: str) -> None:
    """Draw figure `name` into `png` and the pdf beside it."""
    if name not in FIGURES:
        raise ValueError(f"Unknown figure '{name}'; choose from {sorted(FIGURES)}")
    FIGURES[name][1](config, png)
