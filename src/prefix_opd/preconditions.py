"""What a world must show before the paper's claims can be tested in it, measured on the study's outputs.

The paper's method rests on two observations (Fig. 2: the base students' KL against the teacher is
concentrated early in the response; Fig. 3: a teacher prefix lifts an untrained student, with
diminishing returns), and its comparisons mean something only where the teacher solves the benchmarks,
the students do not yet, and full OPD can teach them. Each is one row here, with its numbers:

* ``P1 teacher``: the teacher >= :data:`TEACHER_MIN` on every benchmark, each benchmark's chance <= 0.25;
* ``P2 base students``: each base student <= :data:`BASE_MAX` in domain, answer rate >= :data:`ANSWER_MIN`;
* ``P3 OPD teaches``: full OPD lifts each student by >= :data:`LIFT_MIN` points on the dev set within the
  run's steps (best saved checkpoint minus base);
* ``P4 Fig. 2``: on the base students' own rollouts (KL logged at step 0), the first KL bin's mean
  per-token KL >= :data:`KL_RATIO_MIN` x the mean per-token KL over all later positions;
* ``P5 Fig. 3``: the teacher-prefix probe is concave (every probed length on or above the chord from no
  prefix to the longest, within :data:`CONCAVE_TOL` points) and the shortest prefix gets >= half the largest lift;
* ``P6 no copying``: no benchmark chain is periodic within its length.

P1, P2 and P6 read ``results/models/toy_summary.csv`` and exist in the toy world only; the paper world has
no teacher evaluation on the suite, so they read "not measured" there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from . import paths, tables

TEACHER_MIN, CHANCE_MAX = 0.90, 0.25
BASE_MAX, ANSWER_MIN = 0.35, 0.90
LIFT_MIN = 30.0
KL_RATIO_MIN = 5.0
CONCAVE_TOL = 2.0
SHORTEST_SHARE_MIN = 0.5
IN_DOMAIN = ("math500", "aime24", "aime25")
MET, NOT_MET, NOT_MEASURED = "met", "not met", "not measured"


@dataclass(frozen=True)
class Precondition:
    key: str  # P1 .. P6
    name: str
    requirement: str
    measured: str  # the numbers behind the status
    status: str  # met / not met / not measured


def _status(ok: bool) -> str:
    return MET if ok else NOT_MET


def teacher_strong(summary: pd.DataFrame) -> Precondition:
    t = summary[summary["model"] == "teacher"].set_index("benchmark")
    ok = bool((t["accuracy"] >= TEACHER_MIN).all() and (t["chance"] <= CHANCE_MAX).all())
    measured = ", ".join(f"{b} {a:.2f} (chance {c:.2f})" for b, a, c in zip(t.index, t["accuracy"], t["chance"],
                                                                             strict=True))
    return Precondition("P1", "teacher solves every benchmark", f"teacher >= {TEACHER_MIN} on each, chance <= "
                        f"{CHANCE_MAX}", measured, _status(ok))


def base_students_weak(summary: pd.DataFrame, students: list[str]) -> Precondition:
    parts, ok = [], True
    for s in students:
        rows = summary[(summary["model"] == f"student_{s}") & summary["benchmark"].isin(IN_DOMAIN)]
        if rows.empty:
            return Precondition("P2", "base students are weak but answer", "", f"no rows for student_{s}",
                                NOT_MEASURED)
        acc, rate = float(rows["accuracy"].max()), float(rows["answer_rate"].min())
        ok &= acc <= BASE_MAX and rate >= ANSWER_MIN
        parts.append(f"{s}: best in-domain {acc:.2f}, answer rate >= {rate:.2f}")
    return Precondition("P2", "base students are weak but answer", f"each <= {BASE_MAX} in domain, answer rate >= "
                        f"{ANSWER_MIN}", "; ".join(parts), _status(ok))


def opd_teaches(config: dict[str, Any]) -> Precondition:
    dev, parts, ok = config["dev_benchmark"], [], True
    for s in config["experiments"]["main"]["students"]:
        curve = pd.read_csv(paths.at(paths.CURVE, run=tables.full_opd_run(config, s)))
        best = 100 * float(curve.loc[curve["benchmark"] == dev, "mean_at_k"].max())
        base_summary = pd.read_csv(paths.at(paths.SUITE_SUMMARY, run=tables.base_run(s), step=0)).set_index("benchmark")
        base = 100 * float(base_summary.loc[dev, "mean_at_k"])
        ok &= best - base >= LIFT_MIN
        parts.append(f"{s}: {base:.1f} -> {best:.1f} (+{best - base:.1f})")
    return Precondition("P3", "full OPD teaches both students", f"dev ({dev}) lift >= {LIFT_MIN:.0f} points within "
                        f"{config['training']['steps']} steps", "; ".join(parts), _status(ok))


def kl_first_over_rest(kl: pd.DataFrame, step: int = 0) -> tuple[float, float]:
    """(first bin's mean per-token KL, mean per-token KL over all later positions) of the train rollouts at `step`."""
    kl = tables.kl_bins(kl)
    rows = kl[(kl["source"] == "train") & (kl["step"] == step)].sort_values("bin_start")
    if rows.empty:
        return float("nan"), float("nan")
    first, rest = rows.iloc[0], rows.iloc[1:]
    later = float((rest["kl_mean"] * rest["n_tokens"]).sum() / rest["n_tokens"].sum()) if len(rest) else float("nan")
    return float(first["kl_mean"]), later


def kl_early(config: dict[str, Any]) -> Precondition:
    parts, ok = [], True
    if 0 not in config["training"]["log_steps"]:
        return Precondition("P4", "KL concentrated early (Fig. 2)", "", "training.log_steps lacks 0 (the base "
                            "students' rollouts)", NOT_MEASURED)
    for s in config["experiments"]["main"]["students"]:
        first, rest = kl_first_over_rest(pd.read_csv(paths.at(paths.KL, run=tables.full_opd_run(config, s))))
        ratio = first / rest if rest > 0 else float("inf")
        ok &= ratio >= KL_RATIO_MIN
        parts.append(f"{s}: first bin {first:.3f}, later {rest:.4f} nats/token ({ratio:.1f}x)")
    return Precondition("P4", "KL concentrated early (Fig. 2)", f"base students' first bin >= {KL_RATIO_MIN:.0f}x "
                        "the later positions' mean", "; ".join(parts), _status(ok))


def probe_shape(points: pd.DataFrame) -> tuple[bool, bool, str]:
    """(concave, shortest prefix >= half the largest lift, description) of one student's probe curve."""
    p = points.sort_values("length")
    length, acc = p["length"].to_numpy(dtype=float), 100 * p["mean_at_k"].to_numpy(dtype=float)
    lifts = acc - acc[0]
    chord = lifts[-1] * (length - length[0]) / (length[-1] - length[0])
    concave = bool((lifts >= chord - CONCAVE_TOL).all())
    largest = float(lifts[1:].max())
    share = lifts[1] / largest if largest > 0 else float("nan")
    desc = " / ".join(f"{int(n)}: {a:.1f}" for n, a in zip(length, acc, strict=True)) + f" (shortest {share:.0%})"
    return concave, bool(largest > 0 and share >= SHORTEST_SHARE_MIN), desc


def probe_concave(probe: pd.DataFrame) -> Precondition:
    parts, ok = [], True
    for student, points in probe.groupby("student", sort=False):
        concave, early, desc = probe_shape(points)
        ok &= concave and early
        parts.append(f"{student}: {desc}")
    return Precondition("P5", "teacher prefix lifts, with diminishing returns (Fig. 3)", "concave, shortest prefix "
                        f">= {SHORTEST_SHARE_MIN:.0%} of the largest lift", "; ".join(parts), _status(ok))


def aperiodic(summary: pd.DataFrame) -> Precondition:
    counts = summary.drop_duplicates("benchmark").set_index("benchmark")["periodic_chains"]
    return Precondition("P6", "no copy shortcut", "no benchmark chain periodic within its length",
                        ", ".join(f"{b} {int(n)}" for b, n in counts.items()) + " periodic", _status(counts.sum() == 0))


def check(config: dict[str, Any]) -> list[Precondition]:
    """Every precondition on the study's outputs (files as `inputs()` lists)."""
    students = config["experiments"]["main"]["students"]
    if config["world"] == "toy":
        summary = pd.read_csv(paths.TOY_SUMMARY)
        toy = [teacher_strong(summary), base_students_weak(summary, students)]
    else:
        toy = [Precondition(k, n, "", "the paper world has no teacher evaluation on the suite", NOT_MEASURED)
               for k, n in (("P1", "teacher solves every benchmark"), ("P2", "base students are weak but answer"))]
    out = [*toy, opd_teaches(config), kl_early(config), probe_concave(pd.read_csv(paths.PROBE))]
    if config["world"] == "toy":
        out.append(aperiodic(summary))
    return out


def teacher_accuracy(config: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    """(teacher accuracy, chance level) per benchmark from the toy summary; empty where not measured."""
    if config["world"] != "toy":
        return {}, {}
    t = pd.read_csv(paths.TOY_SUMMARY).query("model == 'teacher'").set_index("benchmark")
    return t["accuracy"].astype(float).to_dict(), t["chance"].astype(float).to_dict()


def inputs(config: dict[str, Any]) -> list[str]:
    """The files `check(config)` reads."""
    students = config["experiments"]["main"]["students"]
    files = [paths.TOY_SUMMARY] if config["world"] == "toy" else []
    for s in students:
        run = tables.full_opd_run(config, s)
        files += [paths.at(paths.CURVE, run=run), paths.at(paths.SUITE_SUMMARY, run=tables.base_run(s), step=0),
                  paths.at(paths.KL, run=run)]
    return [*files, paths.PROBE]


def to_frame(rows: list[Precondition]) -> pd.DataFrame:
    return pd.DataFrame([vars(r) for r in rows])


def main(argv: list[str] | None = None) -> None:
    """`python -m prefix_opd.preconditions [--config ...]`: print the precondition rows of a finished study."""
    import argparse

    import yaml

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--config", nargs="+", default=["config/config.yaml"], help="config files, later ones merged over")
    args = ap.parse_args(argv)
    from .validate import merge_configs

    config: dict[str, Any] = {}
    for path in args.config:
        config = merge_configs(config, yaml.safe_load(open(path)))
    if config.get("world", "toy") == "toy":
        print(pd.read_csv(paths.TOY_SUMMARY).to_string(index=False), end="\n\n")
    for p in check(config):
        print(f"{p.key} {p.name}: {p.status}\n    required: {p.requirement}\n    measured: {p.measured}")


if __name__ == "__main__":
    main()
