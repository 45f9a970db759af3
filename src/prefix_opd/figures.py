"""The paper's figures 2-8, and the accuracy per FLOP of every schedule, from the pipeline's outputs (png + pdf
each).

Each figure has a spec, `spec(name, config)`: the run names, steps and labels it shows, derived from the config
when the workflow is parsed and passed to its job as a param, so a config change replans exactly the figures whose
spec it changes. `inputs(name, spec)` lists the files the figure reads (the workflow declares exactly these) and
`draw(name, spec, png)` reads them by the same path helpers and writes `png` and the `.pdf` beside it. Lengths are
the run's own token counts; in the toy world the paper's value (`toy.paper_lengths`) is given alongside.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from . import efficiency, paths, tables
from .runs import expand_runs, lr_sweep_runs, paper_schedule, seqkd_prefix_runs


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
STEP_PALETTE = "viridis"


def _step_ticks() -> Any:
    """Whole training steps at round values (10, 20, ...)."""
    return ticker.MaxNLocator(integer=True, steps=[1, 2, 5, 10])


METHOD_COLORS = {"opd": "black", "seqkd": "tab:orange"}
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


def _labels(config: dict[str, Any]) -> dict[str, Any]:
    """What every figure's labels read from the config."""
    toy = config["world"] == "toy"
    return {"paper_lengths": tables.paper_lengths(config), "dev": config["dev_benchmark"],
            "students": {s: f"{s} student ({Path(p).name})" for s, p in config["models"]["students"].items()},
            "acc": {b: f"{b} mean@{config['eval']['samples'].get(b, 'k')} (%)" for b in config["benchmarks"]},
            "position_unit": "response position (toy tokens; a 7-token line ≙ 256 paper tokens)" if toy
            else "response position (tokens)", "toy": toy}


def _length(spec: dict[str, Any], n: int) -> str:
    """A length as the run sees it, with the paper-scale equivalent in the toy world."""
    table = {int(k): v for k, v in spec["paper_lengths"].items()}
    return f"{n} (≙{table[int(n)]})" if int(n) in table else f"{n}"


def _lr(lr: float) -> str:
    return f"lr={lr:.0e}"


def _dev_curve(spec: dict[str, Any], run: str, bench: str | None = None) -> pd.DataFrame:
    """step, accuracy (%) of a run's dev (or `bench`) curve."""
    bench = bench or spec["dev"]
    curve = pd.read_csv(paths.at(paths.CURVE, run=run))
    rows = curve[curve["benchmark"] == bench].sort_values("step")
    if rows.empty:
        raise ValueError(f"{paths.at(paths.CURVE, run=run)} has no '{bench}' rows")
    return pd.DataFrame({"step": rows["step"].to_numpy(), "accuracy": 100 * rows["mean_at_k"].to_numpy()})


def _base_accuracy(spec: dict[str, Any], student: str, bench: str | None = None) -> float:
    bench = bench or spec["dev"]
    summary = pd.read_csv(paths.at(paths.SUITE_SUMMARY, run=tables.base_run(student), step=0)).set_index("benchmark")
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


def _acc_label(spec: dict[str, Any], bench: str | None = None) -> str:
    return spec["acc"][bench or spec["dev"]]


def _kl_rows(run: str, source: str, steps: list[int]) -> pd.DataFrame:
    kl = tables.kl_bins(pd.read_csv(paths.at(paths.KL, run=run)))
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


def fig2_spec(config: dict[str, Any]) -> dict[str, Any]:
    return _labels(config) | {"log_steps": config["training"]["log_steps"], "kl_bin": config["training"]["kl_bin"],
                              "panels": [(s, tables.full_opd_run(config, s))
                                         for s in config["experiments"]["main"]["students"]]}


def fig2_inputs(spec: dict[str, Any]) -> list[str]:
    return [paths.at(paths.KL, run=run) for _student, run in spec["panels"]]


def fig2(spec: dict[str, Any], png: str) -> None:
    _theme()
    steps = spec["log_steps"]
    panels = spec["panels"]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 3.4 * len(panels)), sharex=True, squeeze=False)
    for ax, (student, run) in zip(axes[:, 0], panels, strict=True):
        rows = _kl_rows(run, "train", steps)
        if rows.empty:
            _no_data(ax, f"{run} logged no KL at log steps {steps}\n(a verl run logs none: train it natively)")
        else:
            _kl_panel(ax, rows, steps)
        ax.set_title(spec["students"][student])
        ax.set_ylabel("mean reverse KL per token (nats)")
        ax.set_xlabel(spec["position_unit"])
    fig.suptitle(f"Fig. 2: reverse KL along the response during full OPD (bins of {spec['kl_bin']} "
                 "tokens, the step's own rollouts)")
    fig.tight_layout()
    _save(fig, png)


# ------------------------------------------------------------------------------------------------
# Fig. 3: untrained students continuing a teacher prefix


def fig3_spec(config: dict[str, Any]) -> dict[str, Any]:
    labels = _labels(config)
    return {k: labels[k] for k in ("students", "toy", "dev")}


def fig3_inputs(spec: dict[str, Any]) -> list[str]:
    return [paths.PROBE]


def fig3(spec: dict[str, Any], png: str) -> None:
    if not Path(paths.PROBE).exists():
        raise FileNotFoundError(f"{paths.PROBE} is missing: Fig. 3 needs the teacher_prefix_probe rule's output")
    _theme()
    probe = pd.read_csv(paths.PROBE).sort_values(["student", "length"])
    probe["accuracy"] = 100 * probe["mean_at_k"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    palette = dict(zip(probe["student"].unique(), sns.color_palette("deep"), strict=False))
    for student, rows in probe.groupby("student", sort=False):
        ax.errorbar(rows["length"], rows["accuracy"], yerr=100 * rows["std_over_samples"], marker="o", capsize=3,
                    color=palette[student], label=spec["students"].get(student, str(student)))
    _accuracy_axes(ax, steps=False)
    k = int(probe["samples"].iloc[0]) if "samples" in probe else "k"
    ax.set_xlabel("teacher prefix length (tokens; 0 = no prefix)"
                  + ("; a 7-token line ≙ 256 paper tokens" if spec["toy"] else ""))
    ax.set_ylabel(f"{spec['dev']} mean@{k} (%)")
    ax.set_title("Fig. 3: untrained students continuing the teacher's reasoning prefix\n"
                 "(error bars: std over sample sets)")
    ax.legend(title="student")
    fig.tight_layout()
    _save(fig, png)


# ------------------------------------------------------------------------------------------------
# Fig. 4: training compute vs dev accuracy


def fig4_spec(config: dict[str, Any]) -> dict[str, Any]:
    """Per student, its Table 1/2 arms (the first schedule only): (arm key, label, the seeds' runs)."""
    shown = paper_schedule(config)
    panels = [(student, [a for a in student_arms if not a[0].startswith("opd_schedule_") or a[0] == shown])
              for student, student_arms in efficiency.spec(config)["students"]]
    return _labels(config) | {"panels": panels}


def fig4_inputs(spec: dict[str, Any]) -> list[str]:
    out = []
    for student, student_arms in spec["panels"]:
        out.append(paths.at(paths.SUITE_SUMMARY, run=tables.base_run(student), step=0))
        out += [f for _k, _l, names in student_arms for n in names
                for f in (paths.at(paths.CURVE, run=n), paths.at(paths.METRICS, run=n))]
    return out


def _seed_mean_curve(spec: dict[str, Any], names: list[str]) -> pd.DataFrame:
    """One arm's dev curve against cumulative FLOPs: the mean over its seeds' runs, `sd` their spread."""
    by_step = pd.concat([efficiency.run_curve(n, spec["dev"]) for n in names]).groupby("step")
    out = by_step[["accuracy", "flops_cum"]].mean()
    out["sd"] = by_step["accuracy"].std(ddof=1).fillna(0.0)
    return out.reset_index()


SCHEDULE_COLORS = ["tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive"]


def _arm_colors(student_arms: list[tuple[str, str, list[str]]]) -> dict[str, Any]:
    """Full OPD black, SeqKD orange, fixed prefixes in blues (darker = longer), schedules in their own colours."""
    prefixes = sorted(int(k.removeprefix("opd_prefix_")) for k, _l, _n in student_arms if k.startswith("opd_prefix_"))
    blues = sns.color_palette("Blues", len(prefixes) + 2)[2:]
    colors = {f"opd_prefix_{n}": c for n, c in zip(prefixes, blues, strict=True)} | METHOD_COLORS
    sched = [k for k, _l, _n in student_arms if k.startswith("opd_schedule_")]
    return colors | {k: SCHEDULE_COLORS[i % len(SCHEDULE_COLORS)] for i, k in enumerate(sched)}


def _compute_panel(ax: plt.Axes, spec: dict[str, Any], student: str, student_arms: list, goal: float | None = None
                   ) -> None:
    """Dev accuracy against cumulative FLOPs (log), one line per arm (seed mean, band ± 1 sd); with `goal`, the
    target line and each arm's first checkpoint at or above it (seed mean curve) ringed."""
    colors = _arm_colors(student_arms)
    for key, label, names in student_arms:
        curve = _seed_mean_curve(spec, names)
        color = colors[key]
        ax.plot(curve["flops_cum"], curve["accuracy"], marker="o", markersize=4, color=color,
                linestyle="--" if key == "seqkd" else "-", label=label)
        if len(names) > 1:
            ax.fill_between(curve["flops_cum"], curve["accuracy"] - curve["sd"], curve["accuracy"] + curve["sd"],
                            color=color, alpha=0.15, linewidth=0)
        if goal is not None:
            hit = curve[curve["accuracy"] >= goal]
            if not hit.empty:
                ax.plot(hit["flops_cum"].iloc[:1], hit["accuracy"].iloc[:1], marker="o", markersize=11,
                        markerfacecolor="none", markeredgecolor=color, markeredgewidth=1.6)
    if goal is not None:
        ax.axhline(goal, color="black", linestyle=":", linewidth=1.2, label=f"target ({goal:.1f}%)")
    _base_line(ax, _base_accuracy(spec, student))
    _accuracy_axes(ax, steps=False)
    ax.set_xscale("log")
    ax.set_xlabel("cumulative training compute (FLOPs, log scale)")
    ax.set_ylabel(_acc_label(spec))
    ax.set_title(spec["students"][student])
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))


def fig4(spec: dict[str, Any], png: str) -> None:
    _theme()
    panels = spec["panels"]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8.5, 3.8 * len(panels)), squeeze=False)
    for ax, (student, student_arms) in zip(axes[:, 0], panels, strict=True):
        _compute_panel(ax, spec, student, student_arms)
    fig.suptitle("Fig. 4: training compute vs dev accuracy (one marker per saved checkpoint; mean over training "
                 "seeds, band ± 1 sd)")
    fig.tight_layout()
    _save(fig, png)


# ------------------------------------------------------------------------------------------------
# Accuracy per FLOP of every schedule (ours, beyond the paper)


def schedules_spec(config: dict[str, Any]) -> dict[str, Any]:
    """Every main arm of each student, every schedule included, and the target (`efficiency.spec`)."""
    eff = efficiency.spec(config)
    return _labels(config) | {"panels": eff.pop("students"), "efficiency": eff}


def schedules_inputs(spec: dict[str, Any]) -> list[str]:
    return fig4_inputs(spec)


def schedules(spec: dict[str, Any], png: str) -> None:
    _theme()
    panels = spec["panels"]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 4.2 * len(panels)), squeeze=False)
    for ax, (student, student_arms) in zip(axes[:, 0], panels, strict=True):
        _compute_panel(ax, spec, student, student_arms, efficiency.target(spec["efficiency"], student_arms))
    reach = spec["efficiency"]["reach"]
    fig.suptitle(f"Accuracy per FLOP of every schedule: dev accuracy vs training FLOPs (seed mean, band ± 1 sd); "
                 f"ringed: first checkpoint at {reach:.0%} of full OPD's final accuracy")
    fig.tight_layout()
    _save(fig, png)


# ------------------------------------------------------------------------------------------------
# Fig. 5: reverse KL by position during prefix OPD (diagnostic full-length rollouts)


def fig5_spec(config: dict[str, Any]) -> dict[str, Any]:
    runs = expand_runs(config)
    prefix_runs = tables.kl_prefix_runs(config, runs)
    if not prefix_runs:
        raise ValueError("Fig. 5: no main student has a prefix-OPD run at experiments.windows.prefix or "
                         "experiments.lr_sweep.prefix (at training.lr)")
    return _labels(config) | {"log_steps": config["training"]["log_steps"],
                              "panels": [(s, run, runs[run].l_train) for s, run in prefix_runs.items()]}


def fig5_inputs(spec: dict[str, Any]) -> list[str]:
    return [paths.at(paths.KL, run=run) for _s, run, _length in spec["panels"]]


def fig5(spec: dict[str, Any], png: str) -> None:
    _theme()
    steps, panels = spec["log_steps"], spec["panels"]
    lengths = sorted({length for _s, _run, length in panels})
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 3.4 * len(panels)), sharex=True, squeeze=False)
    for ax, (student, run, length) in zip(axes[:, 0], panels, strict=True):
        rows = _kl_rows(run, "diagnostic", steps)
        if rows.empty:
            _no_data(ax, f"{run} logged no diagnostic KL at log steps {steps}\n(a verl run logs none: train it "
                         "natively)")
        else:
            _kl_panel(ax, rows, steps)
        ax.axvspan(0, length, color="tab:blue", alpha=0.07)
        ax.axvline(length, color="tab:red", linestyle=":", linewidth=1.5, label=f"prefix L={_length(spec, length)}")
        ax.legend(fontsize=8)
        ax.set_title(spec["students"][student])
        ax.set_ylabel("mean reverse KL per token (nats)")
        ax.set_xlabel(spec["position_unit"])
    shown = ", ".join(_length(spec, n) for n in lengths)
    fig.suptitle(f"Fig. 5: reverse KL along full-length rollouts during prefix OPD (L={shown}; "
                 "shaded = trained prefix; pooled over the diagnostic rollouts)")
    fig.tight_layout()
    _save(fig, png)


# ------------------------------------------------------------------------------------------------
# Fig. 6: prefix GKD, lambda x beta


def fig6_spec(config: dict[str, Any]) -> dict[str, Any]:
    g = config["experiments"]["gkd"]
    grid = [(lam, beta, lr, run) for (lam, beta, lr), run in tables.gkd_grid(config).items()]
    return _labels(config) | {"student": g["student"], "prefix": g["prefix"], "lrs": g["lrs"], "grid": grid}


def fig6_inputs(spec: dict[str, Any]) -> list[str]:
    runs = [run for *_key, run in spec["grid"]]
    return ([paths.at(paths.CURVE, run=r) for r in runs] + [paths.at(paths.CHOSEN, run=r) for r in runs]
            + [paths.at(paths.SUITE_SUMMARY, run=tables.base_run(spec["student"]), step=0)])


def _gkd_panel(spec: dict[str, Any], ax: plt.Axes, lr: float, base: float) -> None:
    for lam, beta, run_lr, run in sorted(spec["grid"], reverse=True):
        if run_lr == lr:
            curve = _dev_curve(spec, run)
            ax.plot(curve["step"], curve["accuracy"], marker="o", markersize=4, color=GKD_COLORS[(lam, beta)],
                    label=GKD_LABELS[(lam, beta)])
    _base_line(ax, base)
    _accuracy_axes(ax)
    ax.set_xlabel("training step")
    ax.set_ylabel(_acc_label(spec))


def fig6(spec: dict[str, Any], png: str) -> None:
    _theme()
    grid = {(lam, beta, lr): run for lam, beta, lr, run in spec["grid"]}
    chosen_dev = {r: json.loads(Path(paths.at(paths.CHOSEN, run=r)).read_text())["dev_mean_at_k"]
                  for r in grid.values()}
    chosen = tables.gkd_chosen_lr(grid, chosen_dev)
    base = _base_accuracy(spec, spec["student"])
    panels = [chosen, *spec["lrs"]]
    ncols = 2
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.2 * ncols, 3.9 * nrows), squeeze=False, sharey=True)
    for i, lr in enumerate(panels):
        ax = axes.flat[i]
        _gkd_panel(spec, ax, lr, base)
        ax.set_title(f"chosen {_lr(lr)} (best mean dev accuracy)" if i == 0 else f"sweep: {_lr(lr)}",
                     fontweight="bold" if i == 0 else "normal")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=9, bbox_to_anchor=(0.5, 0.0))
    fig.suptitle(f"Fig. 6: prefix GKD (L={_length(spec, spec['prefix'])}), {spec['students'][spec['student']]}: "
                 "on-/off-policy data (λ) x reverse/forward KL (β)")
    fig.tight_layout(rect=(0, 0.09 / nrows, 1, 1))
    _save(fig, png)


# ------------------------------------------------------------------------------------------------
# Fig. 7: prefix SeqKD vs prefix OPD


def fig7_spec(config: dict[str, Any]) -> dict[str, Any]:
    sp = config["experiments"]["seqkd_prefix"]
    seqkd = seqkd_prefix_runs(config)
    return _labels(config) | {
        "student": sp["student"], "prefix": sp["prefix"], "seqkd": [(run, r.lr) for run, r in seqkd.items()],
        "overlay": [r for r in tables.fig7_runs(config, expand_runs(config)) if r not in seqkd],
        "benches": list(dict.fromkeys([config["dev_benchmark"], "math500"]))}


def fig7_inputs(spec: dict[str, Any]) -> list[str]:
    runs = [r for r, _lr in spec["seqkd"]] + list(spec["overlay"])
    return ([paths.at(paths.CURVE, run=r) for r in runs]
            + [paths.at(paths.SUITE_SUMMARY, run=tables.base_run(spec["student"]), step=0)])


def fig7(spec: dict[str, Any], png: str) -> None:
    _theme()
    seqkd, overlay, benches = spec["seqkd"], spec["overlay"], spec["benches"]
    fig, axes = plt.subplots(len(benches), 1, figsize=(8.5, 3.9 * len(benches)), squeeze=False)
    colors = dict(zip([r for r, _lr in seqkd], sns.color_palette("Oranges_r", len(seqkd) + 1), strict=False))
    for ax, bench in zip(axes[:, 0], benches, strict=True):
        base = _base_accuracy(spec, spec["student"], bench)
        data_max = base
        for run, lr in seqkd:
            curve = pd.concat([pd.DataFrame({"step": [0], "accuracy": [base]}), _dev_curve(spec, run, bench)])
            ax.plot(curve["step"], curve["accuracy"], marker="o", markersize=4, color=colors[run],
                    label=f"prefix SeqKD, {_lr(lr)} (bottom axis)")
            data_max = max(data_max, curve["accuracy"].max())
        _base_line(ax, base)
        ax.set_xlabel("prefix SeqKD training step")
        ax.set_ylabel(_acc_label(spec, bench))
        handles, labels = ax.get_legend_handles_labels()
        if overlay:
            top = ax.twiny()
            top.grid(False)
            for run in overlay:
                curve = pd.concat([pd.DataFrame({"step": [0], "accuracy": [base]}), _dev_curve(spec, run, bench)])
                top.plot(curve["step"], curve["accuracy"], marker="s", markersize=4, color="tab:blue",
                         label=f"prefix OPD, L={_length(spec, spec['prefix'])} (top axis)")
                data_max = max(data_max, curve["accuracy"].max())
            top.xaxis.set_major_locator(_step_ticks())
            top.set_xlabel("prefix OPD training step", color="tab:blue")
            top.tick_params(axis="x", colors="tab:blue")
            h2, l2 = top.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        _accuracy_axes(ax, data_max=data_max)
        ax.legend(handles, labels, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
        ax.set_title(bench, loc="left", fontweight="bold")
    note = "" if overlay else f"\n(no prefix-OPD run at L={spec['prefix']} in experiments.main to overlay)"
    fig.suptitle(f"Fig. 7: prefix SeqKD (responses cut to {_length(spec, spec['prefix'])} tokens), "
                 f"{spec['students'][spec['student']]}; step 0 = base model{note}")
    fig.tight_layout()
    _save(fig, png)


# ------------------------------------------------------------------------------------------------
# Fig. 8: learning-rate sweep of prefix OPD


def fig8_spec(config: dict[str, Any]) -> dict[str, Any]:
    s = config["experiments"]["lr_sweep"]
    return _labels(config) | {"student": s["student"], "prefix": s["prefix"],
                              "runs": [(run, r.lr) for run, r in lr_sweep_runs(config).items()]}


def fig8_inputs(spec: dict[str, Any]) -> list[str]:
    return ([paths.at(paths.CURVE, run=r) for r, _lr in spec["runs"]] + [paths.LR_MATCH]
            + [paths.at(paths.SUITE_SUMMARY, run=tables.base_run(spec["student"]), step=0)])


def fig8(spec: dict[str, Any], png: str) -> None:
    _theme()
    match = json.loads(Path(paths.LR_MATCH).read_text())
    base = _base_accuracy(spec, spec["student"])
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    colors = dict(zip([r for r, _lr in spec["runs"]], sns.color_palette("rocket", len(spec["runs"])), strict=True))
    for run, lr in spec["runs"]:
        curve = pd.concat([pd.DataFrame({"step": [0], "accuracy": [base]}), _dev_curve(spec, run)])
        ax.plot(curve["step"], curve["accuracy"], marker="o", markersize=4, color=colors[run], label=_lr(lr))
        if run in match:
            ax.plot([match[run]["step"]], [100 * match[run]["dev_mean_at_k"]], marker="*", markersize=15,
                    color=colors[run], markeredgecolor="black", linestyle="none")
    ax.plot([], [], marker="*", markersize=12, color="white", markeredgecolor="black", linestyle="none",
            label="Table 4 matched checkpoint")
    _base_line(ax, base)
    _accuracy_axes(ax)
    ax.set_xlabel("training step (0 = base model)")
    ax.set_ylabel(_acc_label(spec))
    ax.legend(title="learning rate", fontsize=9, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title(f"Fig. 8: learning-rate sweep of prefix OPD (L={_length(spec, spec['prefix'])}), "
                 f"{spec['students'][spec['student']]}")
    fig.tight_layout()
    _save(fig, png)


Spec = dict[str, Any]
Entry = tuple[Callable[[dict[str, Any]], Spec], Callable[[Spec], list[str]], Callable[[Spec, str], None]]
FIGURES: dict[str, Entry] = {
    "fig2": (fig2_spec, fig2_inputs, fig2), "fig3": (fig3_spec, fig3_inputs, fig3),
    "fig4": (fig4_spec, fig4_inputs, fig4), "fig5": (fig5_spec, fig5_inputs, fig5),
    "fig6": (fig6_spec, fig6_inputs, fig6), "fig7": (fig7_spec, fig7_inputs, fig7),
    "fig8": (fig8_spec, fig8_inputs, fig8), "schedules": (schedules_spec, schedules_inputs, schedules),
}


def _entry(name: str) -> tuple[Callable[..., Any], ...]:
    if name not in FIGURES:
        raise ValueError(f"Unknown figure '{name}'; choose from {sorted(FIGURES)}")
    return FIGURES[name]


def spec(name: str, config: dict[str, Any]) -> Spec:
    """What figure `name` shows (runs, steps, labels): the only part of the config its job depends on."""
    return _entry(name)[0](config)


def inputs(name: str, spec: Spec) -> list[str]:
    """The files figure `name` reads."""
    return _entry(name)[1](spec)


def draw(name: str, spec: Spec, png: str) -> None:
    """Draw figure `name` into `png` and the pdf beside it."""
    _entry(name)[2](spec, png)
