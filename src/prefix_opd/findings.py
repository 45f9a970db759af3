"""The paper's claims as predicates fixed in code, checked on this study's numbers.

Every claim is reduced to one or more comparisons `statistic (direction) threshold`, where the statistic is a
difference of accuracies in percentage points (or a KL change, or a FLOPs ratio). An accuracy comparison is
between two arms, each a run trained once per training seed (`seeds`; the base model is one arm of one), scored
per question (mean correctness over the k samples) on the same questions: its standard error has a seed term
per arm and a paired question term per benchmark (`intervals.macro_seed_question`, macro averages weigh each
benchmark the same), with Welch-Satterthwaite degrees of freedom. Checkpoints chosen on the dev set are compared
on the other benchmarks only (the AIME-25 role is the dev set's twin), never on the set that chose them.

Multiplicity: the comparisons of one claim share a family-wise error of ALPHA (Bonferroni: each interval at
ALPHA / m for a claim of m testable comparisons). Verdict: `holds` when the whole interval is on the claimed
side of the threshold, `does not hold` when it is wholly on the other side (or on the threshold),
`inconclusive` when it straddles.

Which runs, steps, benchmarks and tolerances each claim uses is written below and nowhere else; the workflow asks
for exactly the files `inputs()` lists.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from . import paths, preconditions, schedules, tables
from .intervals import interval, macro_seed_question
from .runs import arm_key, arms, expand_runs, gkd_runs, lr_sweep_runs, main_runs, paper_schedule, seqkd_prefix_runs

N_BOOT = 2000  # KL rows of a single-seed arm: bootstrap resamples of the diagnostic rollouts
SEED = 0
ALPHA = 0.05
HARD_IN_DOMAIN = ["aime24", "aime25"]
IN_DOMAIN = ["math500", "aime24", "aime25"]
OUT_OF_DOMAIN = ["gpqa", "mmlu_pro"]
MATCH_TOL = 2.0  # points: scheduled prefix OPD "matches" full OPD (macro over the held-out benchmarks)
APPROACH_TOL = 5.0  # points: the large student's prefix OPD "approaches" the sufficient-budget runs
FLOPS_FRACTION = 0.5  # "... at less than 50% of the FLOP"
APPROACH_FLOPS = 0.1  # "... while using less than 10% the FLOP"
AT_LEAST_TOL = 2.0  # points: "at least as good" (Finding 1, late checkpoints)
NO_GAIN_TOL = 2.0  # points: "does not improve" (Findings 4.2 and 5)
HOLDS, FAILS, INCONCLUSIVE, NOT_TESTABLE = "holds", "does not hold", "inconclusive", "not testable"
CHANCE_MARGIN = 0.10  # a benchmark on which the teacher is within this of chance tests nothing


@dataclass(frozen=True)
class Result:
    claim: str  # the claim's id (section / finding)
    subject: str  # which comparison of the claim this row is
    paper: str  # what the paper says, with its number where it gives one
    statistic: str  # what the estimate measures
    estimate: float
    se: float  # standard error (0: an exact number)
    df: float  # degrees of freedom of its t interval (inf: normal)
    threshold: float
    direction: str  # "above" / "below": the claim is `estimate` above / below `threshold`
    ours: str = ""  # the numbers behind the estimate
    seeds: str = ""  # training seeds of the compared arms ("3 vs 1")
    untestable: str = ""  # why this world cannot test the comparison (a failed precondition); "" = testable
    alpha: float = ALPHA  # the interval's level: ALPHA / (testable comparisons of the claim)
    lo: float = field(default=float("nan"))
    hi: float = field(default=float("nan"))
    verdict: str = field(default="")

    def __post_init__(self) -> None:
        lo, hi = interval(self.estimate, self.se, self.df, self.alpha)
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)
        v = NOT_TESTABLE if self.untestable else verdict(lo, hi, self.threshold, self.direction)
        object.__setattr__(self, "verdict", v)


def verdict(lo: float, hi: float, threshold: float, direction: str) -> str:
    """holds: CI wholly on the claimed side; does not hold: wholly on the other side or on the threshold."""
    if direction not in ("above", "below"):
        raise ValueError(f"Unknown direction '{direction}'; choose from ['above', 'below']")
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return INCONCLUSIVE
    if direction == "above":
        return HOLDS if lo > threshold else FAILS if hi <= threshold else INCONCLUSIVE
    return HOLDS if hi < threshold else FAILS if lo >= threshold else INCONCLUSIVE


def simultaneous(results: list[Result]) -> list[Result]:
    """Each claim's family of testable comparisons at family-wise level ALPHA (Bonferroni)."""
    m = pd.Series([r.claim for r in results if not r.untestable]).value_counts().to_dict() if results else {}
    return [dataclasses.replace(r, alpha=ALPHA / max(1, m.get(r.claim, 1))) for r in results]


# ------------------------------------------------------------------------------------------------
# statistics


def aligned(*series: pd.Series) -> list[np.ndarray]:
    """Per-question scores of several evaluations of one benchmark, in one question order (paired)."""
    ids = set(series[0].index)
    for s in series[1:]:
        if set(s.index) != ids:
            raise ValueError("paired comparison over different question sets: "
                             f"{sorted(ids ^ set(s.index))[:5]} ...")
    order = sorted(ids)
    return [s.loc[order].to_numpy(dtype=float) for s in series]


def seed_level(values: list[float]) -> tuple[float, float, float]:
    """Mean, standard error and df of per-seed estimates (each seed an independent replication)."""
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return float(v.mean()) if v.size else float("nan"), float("nan"), math.inf
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size)), float(v.size - 1)


def kl_change(kl: pd.DataFrame, first: int, last: int, start: int, n_boot: int = N_BOOT, seed: int = SEED
              ) -> tuple[float, float, int]:
    """Diagnostic KL per token at positions >= `start`: step `last` minus step `first`, paired by position bin:
    estimate = sum_b w_b (KL_last,b - KL_first,b) / sum_b w_b, KL_s,b pooled over step s's rollouts, w_b the
    smaller token count of the two. Returns (estimate, bootstrap standard error, rollouts per step): the bootstrap
    resamples each step's rollouts (the unit of replication; each step draws its own prompts)."""
    diag = kl[(kl["source"] == "diagnostic") & (kl["bin_start"] >= start)]
    bins = sorted(set(diag.loc[diag["step"] == first, "bin_start"]) & set(diag.loc[diag["step"] == last, "bin_start"]))
    if not bins:
        return float("nan"), float("nan"), 0

    def rollout_table(step: int) -> tuple[np.ndarray, np.ndarray]:
        d = diag[(diag["step"] == step) & diag["bin_start"].isin(bins)]
        d = d.assign(kl_sum=d["kl_mean"] * d["n_tokens"])
        wide = d.pivot_table(index="rollout", columns="bin_start", values=["kl_sum", "n_tokens"], aggfunc="sum",
                             fill_value=0).reindex(columns=bins, level=1, fill_value=0)
        return wide["kl_sum"].to_numpy(dtype=float), wide["n_tokens"].to_numpy(dtype=float)

    (sum_a, n_a), (sum_b, n_b) = rollout_table(first), rollout_table(last)

    def estimate(sa: np.ndarray, na: np.ndarray, sb: np.ndarray, nb: np.ndarray) -> np.ndarray:
        """Arrays (..., bins) of pooled KL sums / token counts per step -> the weighted change (...)."""
        w = np.minimum(na, nb)
        with np.errstate(invalid="ignore", divide="ignore"):
            d = np.where(w > 0, sb / np.where(nb > 0, nb, 1) - sa / np.where(na > 0, na, 1), 0.0)
            return (w * d).sum(-1) / w.sum(-1)

    est = float(estimate(sum_a.sum(0), n_a.sum(0), sum_b.sum(0), n_b.sum(0)))
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, len(sum_a), size=(n_boot, len(sum_a)))
    ib = rng.integers(0, len(sum_b), size=(n_boot, len(sum_b)))
    boots = estimate(sum_a[ia].sum(1), n_a[ia].sum(1), sum_b[ib].sum(1), n_b[ib].sum(1))
    return est, float(np.nanstd(boots, ddof=1)), int(min(len(sum_a), len(sum_b)))


# ------------------------------------------------------------------------------------------------
# data access: files on disk, or frames in memory (tests)


class Store(Protocol):
    def correct(self, run: str, step: int, bench: str, source: str) -> pd.Series:
        """Per-question accuracy (mean over samples), indexed by question id; source: suite (the full suite at
        `step`), chosen (the full suite at the dev-chosen `step`), curve (the dev curve at `step`)."""

    def flops(self, run: str, step: int) -> float: ...

    def kl(self, run: str) -> pd.DataFrame: ...

    def chosen(self, run: str) -> int: ...

    def steps(self, run: str) -> list[int]: ...

    def lr_match(self) -> dict[str, dict[str, Any]]: ...


def per_question(samples: pd.DataFrame) -> pd.Series:
    return samples.groupby("id")["correct"].mean().astype(float)


class FileStore:
    """The pipeline's outputs, read by the path helpers of `tables`; each sample file is read once (claims compare
    one evaluation with several others)."""

    @functools.cache  # noqa: B019 (one store per findings job)
    def correct(self, run: str, step: int, bench: str, source: str) -> pd.Series:
        path = (paths.at(paths.CHOSEN_SAMPLES, run=run, bench=bench) if source == "chosen"
                else paths.at(paths.SUITE_SAMPLES, run=run, step=step, bench=bench) if source == "suite"
                else paths.at(paths.CURVE_SAMPLES, run=run, step=step, bench=bench))
        return per_question(pd.read_json(path, lines=True))

    def flops(self, run: str, step: int) -> float:
        return tables.cost_at(paths.at(paths.METRICS, run=run), step)[0]

    def kl(self, run: str) -> pd.DataFrame:
        return pd.read_csv(paths.at(paths.KL, run=run))

    def chosen(self, run: str) -> int:
        return int(json.loads(Path(paths.at(paths.CHOSEN, run=run)).read_text())["step"])

    def steps(self, run: str) -> list[int]:
        return sorted(int(s) for s in pd.read_csv(paths.at(paths.CURVE, run=run))["step"].unique())

    def lr_match(self) -> dict[str, dict[str, Any]]:
        return json.loads(Path(paths.LR_MATCH).read_text())


# ------------------------------------------------------------------------------------------------
# the study's runs, as the claims name them


@dataclass(frozen=True)
class Point:
    """One evaluation: a run at a step, from its full suite (at a fixed step, or the dev-chosen one) or its dev
    curve."""

    run: str
    step: int
    source: str = "suite"


Arm = tuple[Point, ...]  # one evaluation per training seed of a run (the base model: one)


def arm(runs: list[str], step: int | None = None, source: str = "suite", store: Store | None = None) -> Arm:
    """The seeds' runs at a fixed `step`, or (step None) each at its dev-chosen step read from `store` (on the
    full suite: source "chosen")."""
    if step is None:
        if store is None:
            raise ValueError("arm: a dev-chosen step needs the store to read it from")
        return tuple(Point(r, store.chosen(r), "chosen") for r in runs)
    return tuple(Point(r, step, source) for r in runs)


def steps_text(a: Arm) -> str:
    steps = sorted({p.step for p in a})
    return f"step {steps[0]}" if len(steps) == 1 else "steps " + "/".join(str(p.step) for p in a)


class Study:
    """Config-derived names of the runs the claims compare."""

    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.runs = expand_runs(config)
        self.dev = config["dev_benchmark"]
        self.benchmarks = list(config["benchmarks"])
        self.small, self.large = tables.small_large(config)
        self.students = config["experiments"]["main"]["students"]
        self.save_every = config["training"]["save_every"]
        self.paper = {t: tables.paper_reference(t).set_index("method") for t in (1, 2)}
        self.schedule = paper_schedule(config)  # the arm of the paper's schedule (Tables 1-2)

    def bench(self, names: list[str]) -> list[str]:
        return [b for b in names if b in self.benchmarks]

    def held_out(self, names: list[str]) -> list[str]:
        """`names` without the dev set: where checkpoints chosen on the dev set are compared."""
        return [b for b in self.bench(names) if b != self.dev]

    def main(self, student: str) -> dict[str, list[str]]:
        """arm -> runs (one per training seed) of the main arms of `student` (`runs.arm_key`)."""
        specs = main_runs(self.config, student)
        return {arm_key(specs[names[0]]): names for names in arms(specs).values()}

    def prefixes(self) -> list[int]:
        return sorted(self.config["experiments"]["main"]["prefix_lengths"])

    def longer_prefixes(self) -> list[int]:
        """The paper's "longer lengths" (1024 / 2048 of 256..2048): the upper half of the prefix lengths."""
        p = self.prefixes()
        return p[len(p) // 2:]

    def table(self, student: str) -> int:
        return 1 + self.students.index(student)

    def paper_method(self, method: str) -> str:
        """Our method key -> the paper's row name in reference_results.csv."""
        if method.startswith("opd_prefix_"):
            return f"opd_prefix_{tables.paper_length(self.config, int(method.removeprefix('opd_prefix_')))}"
        return method

    def base(self, student: str) -> Arm:
        return (Point(tables.base_run(student), 0),)

    def gkd(self) -> dict[tuple[int, int, float], str]:
        return tables.gkd_grid(self.config)

    def lr_reference(self) -> str:
        """Finding 5 compares every lower lr with the run at training.lr (else the largest lr of the sweep)."""
        specs = lr_sweep_runs(self.config)
        at_default = [n for n, r in specs.items() if r.lr == self.config["training"]["lr"]]
        return at_default[0] if at_default else max(specs, key=lambda n: specs[n].lr)


def paper_value(study: Study, student: str, method: str, bench: str) -> float:
    ref = study.paper.get(study.table(student), pd.DataFrame())
    name = study.paper_method(method)
    return float(ref.loc[name, bench]) if name in ref.index and bench in ref.columns else float("nan")


def paper_macro_gap(study: Study, student: str, a: str, b: str, benches: list[str]) -> float:
    return float(np.mean([paper_value(study, student, a, x) - paper_value(study, student, b, x) for x in benches]))


def paper_flops_ratio(study: Study, student: str, a: str, b: str) -> float:
    ref = study.paper.get(study.table(student), pd.DataFrame({"flops": []}))["flops"]
    return float(ref.get(study.paper_method(a), np.nan) / ref.get(study.paper_method(b), np.nan))


def _fmt(x: float, digits: int = 1) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.{digits}f}"


# ------------------------------------------------------------------------------------------------
# comparisons


def scores(store: Store, a: Arm, b: Arm, bench: str) -> tuple[np.ndarray, np.ndarray]:
    """Seeds x questions of two arms on one benchmark, every row in one question order (paired)."""
    rows = aligned(*[store.correct(p.run, p.step, bench, p.source) for p in (*a, *b)])
    return np.stack(rows[:len(a)]), np.stack(rows[len(a):])


def acc_diff(store: Store, a: Arm, b: Arm, benches: list[str]) -> tuple[float, float, float, str, str]:
    """Macro accuracy difference a - b in points over `benches`, paired by question, over seeds and questions:
    (estimate, se, df, our numbers, seeds)."""
    sa, sb, parts = [], [], []
    for bench in benches:
        va, vb = scores(store, a, b, bench)
        sa.append(100 * va)
        sb.append(100 * vb)
        parts.append(f"{bench} {100 * va.mean():.1f} vs {100 * vb.mean():.1f}")
    est, se, df = macro_seed_question(sa, sb)
    return est, se, df, "; ".join(parts), f"{len(a)} vs {len(b)}"


def flops_ratio(store: Store, a: Arm, b: Arm) -> tuple[float, str]:
    """Mean FLOPs of arm a over mean FLOPs of arm b, each cumulative to its points' steps (exact)."""
    fa = float(np.mean([store.flops(p.run, p.step) for p in a]))
    fb = float(np.mean([store.flops(p.run, p.step) for p in b]))
    return fa / fb, f"{fa:.3g} / {fb:.3g}"


def curve_mean(store: Store, run: str, bench: str) -> pd.Series:
    """Per-question accuracy averaged over every saved checkpoint of a run's dev curve."""
    frames = [store.correct(run, s, bench, "curve") for s in store.steps(run)]
    return pd.concat(frames, axis=1).mean(axis=1)


def claim_in_domain(study: Study, store: Store) -> list[Result]:
    """Sec. 4.2 in-domain: prefix OPD at the longer lengths (dev-chosen) beats both limited-budget baselines,
    OPD - save_every steps and SeqKD - short_steps, on the hard in-domain set that did not choose the checkpoint,
    with fewer FLOPs than OPD - save_every steps ("with half the FLOP"; the paper's ratios are 0.3-0.6)."""
    out = []
    short = study.config["training"]["seqkd"]["short_steps"]
    for student in study.students:
        m = study.main(student)
        baselines = [(arm(m["opd"], study.save_every), "opd_10_steps", f"OPD {study.save_every} steps"),
                     (arm(m["seqkd"], short), "seqkd_300_steps", f"SeqKD {short} steps")]
        for length in study.longer_prefixes():
            key = f"opd_prefix_{length}"
            p = arm(m[key], store=store)
            for base_arm, paper_key, label in baselines:
                for bench in study.held_out(HARD_IN_DOMAIN):
                    est, se, df, ours, seeds = acc_diff(store, p, base_arm, [bench])
                    pp, pb = paper_value(study, student, key, bench), paper_value(study, student, paper_key, bench)
                    out.append(Result("4.2 in-domain", f"{student}: prefix {length} ({steps_text(p)}) - {label}, "
                                      f"{bench}", f"prefix OPD at the longer lengths beats the limited-budget "
                                      f"baselines on AIME; paper {_fmt(pp)} vs {_fmt(pb)}",
                                      "accuracy difference (points)", est, se, df, 0.0, "above", ours, seeds))
            ratio, ours = flops_ratio(store, p, baselines[0][0])
            paper = paper_flops_ratio(study, student, key, "opd_10_steps")
            out.append(Result("4.2 in-domain", f"{student}: FLOPs prefix {length} / {baselines[0][2]}",
                              f"... with fewer FLOPs (\"half the FLOP\"); paper {_fmt(paper, 2)}",
                              "FLOPs ratio (exact)", ratio, 0.0, math.inf, 1.0, "below", ours))
    return out


def claim_in_domain_math(study: Study, store: Store) -> list[Result]:
    """Sec. 4.2: "On MATH500, OPD with prefix outperforms OPD (full, 10 steps)": every prefix length."""
    out = []
    for student in study.students:
        m = study.main(student)
        opd10 = arm(m["opd"], study.save_every)
        for length in study.prefixes():
            key = f"opd_prefix_{length}"
            p = arm(m[key], store=store)
            for bench in study.held_out(["math500"]):
                est, se, df, ours, seeds = acc_diff(store, p, opd10, [bench])
                pp, po = paper_value(study, student, key, bench), paper_value(study, student, "opd_10_steps", bench)
                out.append(Result("4.2 MATH500", f"{student}: prefix {length} ({steps_text(p)}) - OPD "
                                  f"{study.save_every} steps, {bench}", f"prefix OPD beats OPD-10-steps on MATH500; "
                                  f"paper {_fmt(pp)} vs {_fmt(po)}", "accuracy difference (points)", est, se, df, 0.0,
                                  "above", ours, seeds))
    return out


def claim_approaches(study: Study, store: Store) -> list[Result]:
    """Sec. 4.2: the large student's prefix OPD (longest prefix) approaches the sufficient-budget runs (full OPD
    and SeqKD, within APPROACH_TOL points, in-domain macro without the dev set) at < APPROACH_FLOPS of their
    FLOPs."""
    m = study.main(study.large)
    key = f"opd_prefix_{study.prefixes()[-1]}"
    p = arm(m[key], store=store)
    benches = study.held_out(IN_DOMAIN)
    out = []
    for method, label in (("opd", "full OPD"), ("seqkd", "SeqKD")):
        other = arm(m[method], store=store)
        est, se, df, ours, seeds = acc_diff(store, p, other, benches)
        paper = paper_macro_gap(study, study.large, key, method, benches)
        out.append(Result("4.2 approaches", f"{study.large}: prefix {study.prefixes()[-1]} ({steps_text(p)}) - "
                          f"{label} ({steps_text(other)}), in-domain macro", "the 8B student's prefix OPD approaches "
                          f"the sufficient-budget runs; paper {_fmt(paper)} points", "macro accuracy difference "
                          "(points)", est, se, df, -APPROACH_TOL, "above", ours, seeds))
        ratio, ours = flops_ratio(store, p, other)
        paper_ratio = paper_flops_ratio(study, study.large, key, method)
        out.append(Result("4.2 approaches", f"{study.large}: FLOPs prefix {study.prefixes()[-1]} / {label}",
                          f"... at < 10% of their FLOPs; paper {_fmt(paper_ratio, 3)}",
                          "FLOPs ratio (exact)", ratio, 0.0, math.inf, APPROACH_FLOPS, "below", ours))
    return out


def claim_beats_base(study: Study, store: Store) -> list[Result]:
    """Sec. 4.2: prefix OPD (every length, dev-chosen step) beats the base model in-domain (macro average over the
    in-domain benchmarks that did not choose the checkpoint)."""
    out = []
    benches = study.held_out(IN_DOMAIN)
    for student in study.students:
        m = study.main(student)
        for length in study.prefixes():
            key = f"opd_prefix_{length}"
            est, se, df, ours, seeds = acc_diff(store, arm(m[key], store=store), study.base(student), benches)
            paper = paper_macro_gap(study, student, key, "base", benches)
            out.append(Result("4.2 beats base", f"{student}: prefix {length} - base, in-domain macro",
                              f"prefix OPD improves in-domain over the base model; paper {_fmt(paper)} points",
                              "macro accuracy difference (points)", est, se, df, 0.0, "above", ours, seeds))
    return out


def claim_out_of_domain(study: Study, store: Store) -> list[Result]:
    """Sec. 4.2 out-of-domain: the large student's prefix OPD beats base OOD; the small student's shortest
    prefix falls below base OOD (macro over GPQA and MMLU-Pro, dev-chosen steps)."""
    benches = study.bench(OUT_OF_DOMAIN)
    out = []
    cases = [(study.large, length, "above") for length in study.prefixes()]
    cases.append((study.small, study.prefixes()[0], "below"))
    for student, length, direction in cases:
        key = f"opd_prefix_{length}"
        p = arm(study.main(student)[key], store=store)
        est, se, df, ours, seeds = acc_diff(store, p, study.base(student), benches)
        paper = paper_macro_gap(study, student, key, "base", benches)
        out.append(Result("4.2 out-of-domain", f"{student}: prefix {length} - base, OOD macro",
                          f"{student} student's prefix OPD is {direction} base OOD; paper {_fmt(paper)} points",
                          "macro accuracy difference (points)", est, se, df, 0.0, direction, ours, seeds))
    return out


def claim_opd_vs_seqkd_ood(study: Study, store: Store) -> list[Result]:
    """Sec. 4.2 (Tables 1-2): with a sufficient budget, full OPD beats SeqKD out of domain (dev-chosen steps)."""
    benches = study.bench(OUT_OF_DOMAIN)
    out = []
    for student in study.students:
        m = study.main(student)
        est, se, df, ours, seeds = acc_diff(store, arm(m["opd"], store=store), arm(m["seqkd"], store=store), benches)
        paper = paper_macro_gap(study, student, "opd", "seqkd", benches)
        out.append(Result("4.2 OPD vs SeqKD OOD", f"{student}: full OPD - SeqKD, OOD macro", "with a sufficient "
                          f"budget full OPD beats SeqKD out of domain; paper {_fmt(paper)} points",
                          "macro accuracy difference (points)", est, se, df, 0.0, "above", ours, seeds))
    return out


def claim_schedule(study: Study, store: Store) -> list[Result]:
    """Sec. 4.2 scheduling: scheduled prefix OPD is within MATCH_TOL points of full OPD (macro over every benchmark
    but the dev set, dev-chosen steps) and costs < FLOPS_FRACTION of its FLOPs (cumulative to the chosen steps)."""
    out = []
    benches = study.held_out(tables.BENCH_COLUMNS)
    for student in study.students:
        m = study.main(student)
        sched, full = arm(m[study.schedule], store=store), arm(m["opd"], store=store)
        est, se, df, ours, seeds = acc_diff(store, sched, full, benches)
        paper = paper_macro_gap(study, student, "opd_schedule", "opd", benches)
        out.append(Result("4.2 scheduling", f"{student}: schedule ({steps_text(sched)}) - full OPD "
                          f"({steps_text(full)}), macro over {len(benches)} benchmarks",
                          f"schedule matches full OPD; paper {_fmt(paper)} points", "macro accuracy difference "
                          "(points)", est, se, df, -MATCH_TOL, "above", ours, seeds))
        ratio, ours = flops_ratio(store, sched, full)
        out.append(Result("4.2 scheduling", f"{student}: FLOPs schedule / full OPD", "schedule uses < 50% of full "
                          f"OPD's FLOPs; paper {_fmt(paper_flops_ratio(study, student, 'opd_schedule', 'opd'), 2)}",
                          "FLOPs ratio (exact)", ratio, 0.0, math.inf, FLOPS_FRACTION, "below", ours))
    return out


def flops_to_reach(store: Store, run: str, target: float, bench: str) -> tuple[float, bool]:
    """Cumulative FLOPs at the first saved checkpoint of `run` whose `bench` curve accuracy reaches `target`;
    (FLOPs at its last checkpoint, False) when none does."""
    steps = store.steps(run)
    for step in steps:
        if float(store.correct(run, step, bench, "curve").mean()) >= target:
            return store.flops(run, step), True
    return store.flops(run, steps[-1]), False


OURS = "ours: "  # claim ids of this project's own claims (not the paper's)


def adaptive_arms(study: Study, student: str) -> dict[str, list[str]]:
    """The student's adaptive-schedule arms by schedule name (runs per seed)."""
    m = study.main(student)
    return {s["name"]: m[f"opd_schedule_{s['name']}"] for s in study.config["experiments"]["main"]["schedules"]
            if schedules.is_adaptive(s)}


def reach_order(a: tuple[float, bool], b: tuple[float, bool]) -> int:
    """+1 when run a reaches the target at fewer FLOPs than run b (or b never does), -1 the other way round, 0
    when neither reaches it (each `(FLOPs to reach or at the last checkpoint, reached)`: censored at the end)."""
    (fa, ha), (fb, hb) = a, b
    if not ha and not hb:
        return 0
    if ha and (not hb or fa < fb):
        return 1
    return -1 if hb and (not ha or fb < fa) else 0


def claim_adaptive(study: Study, store: Store) -> list[Result]:
    """Ours, beyond the paper: an adaptive schedule reaches `experiments.main.reach` of full OPD's final dev accuracy
    (mean over its seeds) at fewer FLOPs than the paper's schedule. Per student and schedule, runs paired by
    training seed: +1 when the adaptive run reaches the target first (fewer cumulative FLOPs at its first saved
    checkpoint at or above it, or the paper schedule's run never does), -1 when the paper schedule's does, 0 when
    neither does within its steps; the claim: the mean over seeds is above 0 (seed-level t interval)."""
    out = []
    dev, reach = study.dev, float(study.config["experiments"]["main"]["reach"])
    for student in study.students:
        m = study.main(student)
        final = [float(store.correct(r, store.steps(r)[-1], dev, "curve").mean()) for r in m["opd"]]
        goal = reach * float(np.mean(final))
        paper_runs = [flops_to_reach(store, r, goal, dev) for r in m[study.schedule]]
        for name, runs in adaptive_arms(study, student).items():
            mine = [flops_to_reach(store, r, goal, dev) for r in runs]
            order = [reach_order(a, b) for a, b in zip(mine, paper_runs, strict=True)]
            est, se, df = seed_level(order)
            ours = "; ".join(f"{_reached(a)} vs {_reached(b)}" for a, b in zip(mine, paper_runs, strict=True))
            out.append(Result(f"{OURS}{name} vs {study.schedule.removeprefix('opd_schedule_')}",
                              f"{student}: first to reach {100 * goal:.1f}% on {dev}, {name} vs paper schedule",
                              f"not in the paper: the adaptive schedule reaches {reach:.0%} of full OPD's final "
                              "accuracy at fewer FLOPs than the paper's schedule",
                              "who reaches it first (+1 adaptive, -1 paper schedule, 0 neither; mean over seeds)",
                              est, se if len(order) > 1 else 0.0, df, 0.0, "above", ours, f"{len(order)} seeds"))
    return out


def _reached(run: tuple[float, bool]) -> str:
    return f"{run[0]:.2e}" if run[1] else "never"


def claim_finding1(study: Study, store: Store) -> list[Result]:
    """Finding 1. Early: the FLOPs full OPD needs to reach the dev accuracy that the shortest prefix reaches at
    its first saved step, over the FLOPs of those prefix steps (the paper's 47x), is above 1: per seed, the log
    ratio (a full-OPD curve that never reaches it counts its last checkpoint: conservative), then over seeds.
    Late (last saved step): the longest prefix and the schedule are at least as good as the shortest prefix on
    dev (within AT_LEAST_TOL points)."""
    out = []
    dev = study.dev
    shortest, longest = study.prefixes()[0], study.prefixes()[-1]
    for student in study.students:
        m = study.main(student)
        step = study.save_every
        logs, parts = [], []
        for prefix, full in zip(m[f"opd_prefix_{shortest}"], m["opd"], strict=True):
            target = float(store.correct(prefix, step, dev, "curve").mean())
            f_full, reached = flops_to_reach(store, full, target, dev)
            ratio = f_full / store.flops(prefix, step)
            logs.append(math.log10(ratio))
            parts.append(f"{100 * target:.1f}%: {'' if reached else '> '}{ratio:.3g}x")
        est, se, df = seed_level(logs)
        out.append(Result("Finding 1 (early)", f"{student}: FLOPs full OPD needs to reach prefix {shortest}'s "
                          f"step-{step} {dev} accuracy / prefix FLOPs", "a short prefix reaches an accuracy at far "
                          "fewer FLOPs (8B: 5%->23.5% with 5.7e17 FLOPs; full OPD needs 2.7e19: 47x)",
                          "log10 FLOPs ratio (per seed, mean over seeds)", est, se if len(logs) > 1 else 0.0, df,
                          0.0, "above", "; ".join(parts), f"{len(logs)} seeds"))
        last = max(store.steps(m[f"opd_prefix_{shortest}"][0]))
        short = arm(m[f"opd_prefix_{shortest}"], last, "curve")
        for key, label in ((f"opd_prefix_{longest}", f"prefix {longest}"), (study.schedule, "schedule")):
            est, se, df, ours, seeds = acc_diff(store, arm(m[key], last, "curve"), short, [dev])
            out.append(Result("Finding 1 (late)", f"{student}: {label} - prefix {shortest} at step {last}, {dev}",
                              "at the end a longer prefix / the schedule is at least as good as a short prefix",
                              "accuracy difference (points)", est, se, df, -AT_LEAST_TOL, "above", ours, seeds))
    return out


def claim_tail_kl(study: Study, store: Store) -> list[Result]:
    """Finding 2: the large student's diagnostic KL beyond the prefix (positions >= L) falls from the first to
    the last log step. Finding 3: the small student's tail KL (positions >= l_max / 2) rises. With several seeds
    the per-seed changes replicate (seed-level t interval); with one, each step's diagnostic rollouts are
    resampled."""
    log_steps = study.config["training"]["log_steps"]
    first, last = min(log_steps), max(log_steps)
    runs = tables.kl_prefix_arms(study.config, study.runs)
    length = study.runs[runs[study.large][0]].l_train if study.large in runs else 0
    out = []
    cases = [("Finding 2", study.large, length, "below", f"positions >= L={length}",
              "large student: KL beyond the prefix decreases with training (Fig. 5 down arrows)"),
             ("Finding 3", study.small, study.config["training"]["l_max"] // 2, "above",
              f"tail positions >= l_max/2 = {study.config['training']['l_max'] // 2}",
              "small student: tail KL increases with training (Fig. 5 up arrow)")]
    for claim, student, start, direction, where, paper in cases:
        if student not in runs:
            continue
        changes = [kl_change(store.kl(run), first, last, start) for run in runs[student]]
        n = min(c[2] for c in changes)
        if len(changes) > 1:
            est, se, df = seed_level([c[0] for c in changes])
        else:
            est, se, df = changes[0][0], changes[0][1], math.inf
        ours = (f"{n} rollouts per step; per seed " + ", ".join(f"{c[0]:.3g}" for c in changes)) if n else \
            "no diagnostic tokens there"
        out.append(Result(claim, f"{student}: {study.runs[runs[student][0]].arm}, {where}, step {last} - step "
                          f"{first}", paper, "diagnostic KL change per token (nats)", est, se, df, 0.0, direction,
                          ours, f"{len(changes)} seeds"))
    return out


def claim_seqkd_prefix(study: Study, store: Store) -> list[Result]:
    """Finding 4.2: prefix SeqKD declines, or at most slows the decline: its dev accuracy at its last saved step is
    not above the base model's by more than NO_GAIN_TOL points (no dev-chosen step: no selection)."""
    out = []
    dev = study.dev
    for run, spec in seqkd_prefix_runs(study.config).items():
        last = max(store.steps(run))
        est, se, df, ours, seeds = acc_diff(store, (Point(run, last, "curve"),), study.base(spec.student), [dev])
        out.append(Result("Finding 4.2", f"{run} (lr {spec.lr:.0e}) at its last step {last} - base, {dev}",
                          "prefix SeqKD does not improve over its start (it harms or slows the decrease)",
                          "accuracy difference (points)", est, se, df, NO_GAIN_TOL, "below", ours, seeds))
    return out


def claim_lr(study: Study, store: Store) -> list[Result]:
    """Finding 5: at matched dev accuracy (Table 4), a lower lr is not better OOD than the reference lr by more
    than NO_GAIN_TOL points (macro over GPQA and MMLU-Pro)."""
    match = store.lr_match()
    specs = lr_sweep_runs(study.config)
    ref = study.lr_reference()
    benches = study.bench(OUT_OF_DOMAIN)
    paper = tables.paper_ablations(4).query("method != 'base'").sort_values("lr", ascending=False)
    paper_ref = paper[["mmlu_pro", "gpqa"]].iloc[0].mean() if not paper.empty else float("nan")
    out = []
    for i, (run, spec) in enumerate(sorted(specs.items(), key=lambda kv: -kv[1].lr)):
        if run == ref or spec.lr > specs[ref].lr:
            continue
        p_low = paper[["mmlu_pro", "gpqa"]].iloc[i].mean() if i < len(paper) else float("nan")
        est, se, df, ours, seeds = acc_diff(store, (Point(run, match[run]["step"]),),
                                            (Point(ref, match[ref]["step"]),), benches)
        out.append(Result("Finding 5", f"lr {spec.lr:.0e} (step {match[run]['step']}) - lr {specs[ref].lr:.0e} "
                          f"(step {match[ref]['step']}), OOD macro", "a lower lr does not improve OOD at matched dev "
                          f"accuracy; paper {_fmt(p_low - paper_ref)} points", "macro accuracy difference (points)",
                          est, se, df, NO_GAIN_TOL, "below", ours, seeds))
    return out


def gkd_lr(study: Study, store: Store) -> float:
    """The GKD learning rate Sec. 5.3 reports (tables.gkd_chosen_lr on the dev-chosen accuracies)."""
    dev_at_chosen = {run: float(store.correct(run, store.chosen(run), study.dev, "curve").mean())
                     for run in gkd_runs(study.config)}
    return tables.gkd_chosen_lr(tables.gkd_grid(study.config), dev_at_chosen)


def claim_gkd(study: Study, store: Store) -> list[Result]:
    """Sec. 5.3 at the chosen GKD lr, on dev accuracy averaged over every saved checkpoint ("consistent",
    "stable"): (i) on-policy reverse KL beats the other three; (ii) on-policy forward KL beats base but is
    below on-policy reverse KL; (iii) off-policy reverse KL gives only mild gains (above base) and off-policy
    forward KL is below base."""
    dev = study.dev
    lr = gkd_lr(study, store)
    grid = {(lam, beta): run for (lam, beta, run_lr), run in study.gkd().items() if run_lr == lr}
    student = study.config["experiments"]["gkd"]["student"]
    base = store.correct(tables.base_run(student), 0, dev, "suite")
    mean = {k: curve_mean(store, run, dev) for k, run in grid.items()}
    names = {(1, 1): "on-policy reverse", (1, 0): "on-policy forward", (0, 1): "off-policy reverse",
             (0, 0): "off-policy forward"}

    def row(claim: str, a: pd.Series, b: pd.Series, subject: str, paper: str, direction: str) -> Result:
        va, vb = aligned(a, b)
        est, se, df = macro_seed_question([100 * va[None, :]], [100 * vb[None, :]])
        return Result(claim, f"{subject} (lr {lr:.0e}), {dev}", paper, "curve-mean accuracy difference (points)",
                      est, se, df, 0.0, direction, f"{100 * va.mean():.1f} vs {100 * vb.mean():.1f}", "1 vs 1")

    out = [row("5.3 (i)", mean[(1, 1)], mean[k], f"{names[(1, 1)]} - {names[k]}",
               "on-policy reverse KL is the strongest GKD setting", "above") for k in ((1, 0), (0, 1), (0, 0))]
    out.append(row("5.3 (ii)", mean[(1, 0)], base, f"{names[(1, 0)]} - base", "on-policy forward KL beats base",
                   "above"))
    out.append(row("5.3 (ii)", mean[(1, 0)], mean[(1, 1)], f"{names[(1, 0)]} - {names[(1, 1)]}",
                   "... but is below on-policy reverse KL", "below"))
    out.append(row("5.3 (iii)", mean[(0, 1)], base, f"{names[(0, 1)]} - base", "off-policy reverse KL gives (only "
                   "mild) gains over base", "above"))
    out.append(row("5.3 (iii)", mean[(0, 0)], base, f"{names[(0, 0)]} - base", "off-policy forward KL falls below "
                   "base", "below"))
    return out


def claim_windows(study: Study, store: Store) -> list[Result]:
    """Table 3: at the last of experiments.windows.steps the prefix window beats every other window on dev."""
    rows = tables.window_rows(study.config, study.runs)
    step = study.config["experiments"]["windows"]["steps"][-1]
    paper = tables.paper_ablations(3)
    paper_at = paper[paper["step"] == 30].set_index("method")["aime24"]
    (prefix_method, prefix), windows = rows[1], rows[2:]
    out = []
    for method, run in windows:
        est, se, df, ours, seeds = acc_diff(store, (Point(prefix, step, "curve"),), (Point(run, step, "curve"),),
                                            [study.dev])
        pv = paper_at.get(prefix_method, np.nan) - paper_at.get(method, np.nan)
        out.append(Result("Table 3 ordering", f"{prefix_method} - {method} at step {step}, {study.dev}",
                          f"the prefix window is best among the windows; paper {_fmt(pv)} points at step 30",
                          "accuracy difference (points)", est, se, df, 0.0, "above", ours, seeds))
    return out


# claim -> (the preconditions it needs, the benchmarks it reads; "dev" = the dev benchmark)
CLAIM_NEEDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "4.2 in-domain": (("P2", "P3"), tuple(HARD_IN_DOMAIN)),
    "4.2 MATH500": (("P2", "P3"), ("math500",)),
    "4.2 approaches": (("P2", "P3"), tuple(IN_DOMAIN)),
    "4.2 beats base": (("P2", "P3"), tuple(IN_DOMAIN)),
    "4.2 out-of-domain": (("P2", "P3"), tuple(OUT_OF_DOMAIN)),
    "4.2 OPD vs SeqKD OOD": (("P2", "P3"), tuple(OUT_OF_DOMAIN)),
    "4.2 scheduling": (("P2", "P3"), tuple(IN_DOMAIN + OUT_OF_DOMAIN)),
    "Finding 1 (early)": (("P2", "P3"), ("dev",)),
    "Finding 1 (late)": (("P2", "P3"), ("dev",)),
    "Finding 2": (("P4",), ()),
    "Finding 3": (("P4",), ()),
    "Finding 4.2": (("P2",), ("dev",)),
    "Finding 5": (("P2", "P3"), tuple(OUT_OF_DOMAIN)),
    "5.3 (i)": (("P2", "P3"), ("dev",)),
    "5.3 (ii)": (("P2", "P3"), ("dev",)),
    "5.3 (iii)": (("P2", "P3"), ("dev",)),
    "Table 3 ordering": (("P2", "P3"), ("dev",)),
    OURS: (("P2", "P3"), ("dev",)),  # every claim of our own
}


def gate(results: list[Result], pre: list[preconditions.Precondition], teacher: dict[str, float],
         chance: dict[str, float], dev: str) -> list[Result]:
    """Mark "not testable" (with the reason) every comparison whose claim needs a precondition that is not met,
    or reads a benchmark on which the teacher is within CHANCE_MARGIN of chance; then set each claim's intervals at
    the family-wise level over its testable comparisons. Preconditions "not measured" (the paper world) do not
    gate."""
    failed = {p.key: p.name for p in pre if p.status == preconditions.NOT_MET}
    out = []
    for r in results:
        needs, benches = CLAIM_NEEDS.get(OURS if r.claim.startswith(OURS) else r.claim, ((), ()))
        reasons = [f"{k} not met ({failed[k]})" for k in needs if k in failed]
        for b in (dev if b == "dev" else b for b in benches):
            if b in teacher and teacher[b] <= chance.get(b, 0.0) + CHANCE_MARGIN:
                reasons.append(f"the teacher is at chance on {b} ({teacher[b]:.2f})")
        out.append(dataclasses.replace(r, untestable="; ".join(reasons)) if reasons else r)
    return simultaneous(out)


CLAIMS = [claim_in_domain, claim_in_domain_math, claim_approaches, claim_beats_base, claim_out_of_domain,
          claim_opd_vs_seqkd_ood, claim_schedule, claim_finding1, claim_tail_kl, claim_seqkd_prefix, claim_lr,
          claim_gkd, claim_windows, claim_adaptive]


def evaluate(config: dict[str, Any], store: Store) -> list[Result]:
    """Every claim's comparisons, each claim's intervals at the family-wise level ALPHA."""
    study = Study(config)
    return simultaneous([r for claim in CLAIMS for r in claim(study, store)])


# ------------------------------------------------------------------------------------------------
# what the claims read (the workflow's inputs)


def chosen_runs(config: dict[str, Any]) -> list[str]:
    """Runs whose dev-chosen step some claim uses."""
    names = [n for s in config["experiments"]["main"]["students"] for n in main_runs(config, s)]
    return list(dict.fromkeys(names + list(seqkd_prefix_runs(config)) + list(gkd_runs(config))))


def curve_runs(config: dict[str, Any]) -> list[str]:
    """Runs whose per-sample dev curve some claim reads."""
    runs = expand_runs(config)
    names = [n for s in config["experiments"]["main"]["students"] for n in main_runs(config, s)]
    names += list(seqkd_prefix_runs(config)) + list(gkd_runs(config))
    names += [run for _m, run in tables.window_rows(config, runs)]
    return list(dict.fromkeys(names))


def suite_points(config: dict[str, Any], match: dict[str, dict[str, Any]]) -> list[tuple[str, int]]:
    """(run, step) of every full-suite evaluation at a fixed step the claims read (the dev-chosen ones are
    `tables.chosen_suite_runs`)."""
    study = Study(config)
    points = []
    short = config["training"]["seqkd"]["short_steps"]
    for student in study.students:
        m = study.main(student)
        points += [(tables.base_run(student), 0)] + [(run, study.save_every) for run in m["opd"]]
        points += [(run, short) for run in m["seqkd"]]
    points += [(tables.base_run(s.student), 0) for s in seqkd_prefix_runs(config).values()]
    points.append((tables.base_run(config["experiments"]["gkd"]["student"]), 0))
    points += [(run, m["step"]) for run, m in match.items()]
    return list(dict.fromkeys(points))


def inputs(config: dict[str, Any], match: dict[str, dict[str, Any]]) -> list[str]:
    """Every file `evaluate(config, FileStore())` reads."""
    runs = expand_runs(config)
    files = [paths.at(paths.SUITE_SAMPLES, run=run, step=step, bench=b) for run, step in suite_points(config, match)
             for b in config["benchmarks"]]
    files += [paths.at(paths.CHOSEN_DIR, run=run) for run in tables.chosen_suite_runs(config)]
    for run in curve_runs(config):
        files += [paths.at(paths.CURVE, run=run), paths.at(paths.CURVE_DIR, run=run)]
    files += [paths.at(paths.CHOSEN, run=run) for run in chosen_runs(config)]
    files += [paths.at(paths.METRICS, run=n) for s in config["experiments"]["main"]["students"]
              for n in main_runs(config, s)]
    files += [paths.at(paths.KL, run=run) for arm_runs in tables.kl_prefix_arms(config, runs).values()
              for run in arm_runs]
    files.append(paths.LR_MATCH)
    files += preconditions.inputs(config)
    return list(dict.fromkeys(files))


# ------------------------------------------------------------------------------------------------
# output


ROLL_UP = ("A claim holds when every testable comparison of it holds, does not hold when any does not, and is "
           "inconclusive otherwise; comparisons this world cannot test (a failed precondition, a teacher at chance) "
           "are left out, and a claim with none left is not testable.")


def summary(results: list[Result]) -> pd.DataFrame:
    """One verdict per claim, by the ROLL_UP rule."""
    frame = pd.DataFrame([asdict(r) for r in results])
    rows = []
    for claim, group in frame.groupby("claim", sort=False):
        testable = group[group["verdict"] != NOT_TESTABLE]
        v = set(testable["verdict"])
        overall = (NOT_TESTABLE if testable.empty else FAILS if FAILS in v else HOLDS if v == {HOLDS}
                   else INCONCLUSIVE)
        rows.append({"claim": claim, "comparisons": len(group), "holds": int((group["verdict"] == HOLDS).sum()),
                     "not_testable": len(group) - len(testable), "verdict": overall})
    return pd.DataFrame(rows)


def to_markdown(results: list[Result], config: dict[str, Any],
                pre: list[preconditions.Precondition] | None = None) -> str:
    lines = ["# Findings: the paper's claims checked on this run", "",
             f"World: `{config['world']}`; training seeds of the replicated runs: {config.get('seeds', [0])}. Each row "
             "is one comparison fixed in `src/prefix_opd/findings.py`. Interval: Student t over training seeds and "
             "questions (a seed term per arm, a paired question term per benchmark, macro averages weigh benchmarks "
             "equally; Welch-Satterthwaite df; one seed per arm: questions only, normal quantile); KL rows: seed-level "
             "t interval, or with one seed a bootstrap over each step's diagnostic rollouts. Each claim's comparisons "
             "hold a family-wise "
             f"level of {1 - ALPHA:.0%} (Bonferroni: m testable comparisons, each at {1 - ALPHA:.0%}/m; the `level` "
             "column). Verdict: **holds** when the interval lies wholly on the claimed side of the threshold, **does "
             "not hold** when wholly on the other side, *inconclusive* when it straddles. Accuracies in percentage "
             f"points. Checkpoints chosen on the dev set ({config['dev_benchmark']}) are compared on the other "
             "benchmarks only; comparisons on the dev set use fixed steps of the dev curves.", ""]
    if pre:
        lines += ["## Preconditions", "", "What the world must show before the claims below test anything "
                  "(`src/prefix_opd/preconditions.py`).", "", "| | precondition | required | measured | status |",
                  "|---|---|---|---|---|"]
        lines += [f"| {p.key} | {p.name} | {p.requirement} | {p.measured} | {_verdict_md(p.status)} |" for p in pre]
        lines.append("")
    lines += ["## Per claim", "", ROLL_UP, "", "| claim | comparisons | hold | not testable | verdict |",
              "|---|---|---|---|---|"]
    for _, r in summary(results).iterrows():
        lines.append(f"| {r['claim']} | {r['comparisons']} | {r['holds']} | {r['not_testable']} | "
                     f"{_verdict_md(r['verdict'])} |")
    lines += adaptive_summary(results)
    lines += ["", "## Comparisons", "", "| claim | comparison | paper says | our numbers | seeds | statistic: "
              "estimate [interval] | level | claimed | verdict |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        sign = ">" if r.direction == "above" else "<"
        verdict_md = _verdict_md(r.verdict) + (f" ({r.untestable})" if r.untestable else "")
        level = "exact" if r.se == 0 else f"{1 - r.alpha:.1%}"
        lines.append(f"| {r.claim} | {r.subject} | {r.paper} | {r.ours} | {r.seeds} | {r.statistic}: "
                     f"{_num(r.estimate)} [{_num(r.lo)}, {_num(r.hi)}] | {level} | {sign} {_num(r.threshold)} | "
                     f"{verdict_md} |")
    return "\n".join(lines) + "\n"


def adaptive_summary(results: list[Result]) -> list[str]:
    """One sentence on our own claim: does any adaptive schedule beat the paper's schedule on FLOPs to reach?"""
    frame = summary(results)
    ours = frame[frame["claim"].str.startswith(OURS)]
    if ours.empty:
        return []
    held = ours.loc[ours["verdict"] == HOLDS, "claim"].str.removeprefix(OURS).tolist()
    verdicts = ", ".join(f"{c.removeprefix(OURS)} {v}" for c, v in zip(ours["claim"], ours["verdict"], strict=True))
    if held:
        answer = f"yes: {', '.join(held)}"
    elif (ours["verdict"] == NOT_TESTABLE).all():
        answer = f"not testable in this world ({verdicts}; see the comparisons for why)"
    else:
        answer = f"no adaptive schedule does so on every student ({verdicts})"
    return ["", "## Beyond the paper", "", "Does an adaptive prefix schedule reach the target fraction of full OPD's "
            f"final dev accuracy at fewer FLOPs than the paper's schedule (claims `{OURS}...`)? {answer}."]


def _num(x: float) -> str:
    if not np.isfinite(x):
        return "n/a"
    return f"{x:.3g}" if abs(x) < 0.01 and x != 0 else f"{x:.2f}"


def _verdict_md(v: str) -> str:
    return f"*{v}*" if v in (INCONCLUSIVE, NOT_TESTABLE, preconditions.NOT_MEASURED) else f"**{v}**"


def write(results: list[Result], config: dict[str, Any], md: str, csv: str,
          pre: list[preconditions.Precondition] | None = None) -> None:
    """findings.md, and findings.csv with the precondition rows (kind `precondition`) before the claims' rows."""
    Path(md).parent.mkdir(parents=True, exist_ok=True)
    pre_rows = [{"kind": "precondition", "claim": f"{p.key} {p.name}", "subject": p.requirement, "ours": p.measured,
                 "verdict": p.status} for p in pre or []]
    claim_rows = [{"kind": "claim", **asdict(r)} for r in results]
    pd.DataFrame(pre_rows + claim_rows).to_csv(csv, index=False)
    Path(md).write_text(to_markdown(results, config, pre))


def run(config: dict[str, Any], md: str, csv: str) -> None:
    """Check the preconditions, evaluate every claim on the pipeline's outputs, gate the claims this world
    cannot test, and write the findings."""
    pre = preconditions.check(config)
    teacher, chance = preconditions.teacher_accuracy(config)
    results = gate(evaluate(config, FileStore()), pre, teacher, chance, config["dev_benchmark"])
    write(results, config, md, csv, pre)
