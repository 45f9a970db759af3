"""The findings' predicates on synthetic numbers: each claim holds on data that agrees with the paper, and
perturbing the data the claim reads flips its verdict."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from prefix_opd import findings, paths, preconditions, tables
from prefix_opd.findings import FAILS, HOLDS, INCONCLUSIVE

ROOT = Path(__file__).resolve().parents[1]
N_QUESTIONS = 60


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def questions(p: float, bench: str, n: int = N_QUESTIONS) -> pd.Series:
    """Per-question accuracy: the first round(p * n) questions right, the rest wrong."""
    return pd.Series((np.arange(n) < round(p * n)).astype(float), index=[f"{bench}-{i:04d}" for i in range(n)])


class Synthetic:
    """A Store whose accuracies come from rules of the form (run substring, bench or None) -> p; the last
    matching rule wins, so a test perturbs the data by appending one rule."""

    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.rules: list[tuple[str, str | None, float]] = [("", None, 0.3)]
        self.flops_: dict[str, float] = {}
        self.kl_: dict[str, pd.DataFrame] = {}
        self.step_rules: list[tuple[str, int, float]] = []  # (run substring, step, p): suite and curve

    def set(self, run_part: str, p: float, bench: str | None = None) -> Synthetic:
        self.rules.append((run_part, bench, p))
        return self

    def correct(self, run: str, step: int, bench: str, source: str) -> pd.Series:
        p = next(p for part, b, p in reversed(self.rules) if part in run and b in (None, bench))
        for part, s, q in self.step_rules:
            if part in run and s == step:
                p = q
        return questions(p, bench)

    def flops(self, run: str, step: int) -> float:
        """FLOPs per step by run substring (the last matching entry wins)."""
        per_step = [v for part, v in self.flops_.items() if part in run]
        return (per_step[-1] if per_step else 5e5 if "prefix" in run else 1e7) * step

    def kl(self, run: str) -> pd.DataFrame:
        return self.kl_[run]

    def chosen(self, run: str) -> int:
        return self.config["training"]["steps"]

    def steps(self, run: str) -> list[int]:
        t = self.config["training"]
        return list(range(t["save_every"], t["steps"] + 1, t["save_every"]))

    def lr_match(self) -> dict[str, dict[str, Any]]:
        return {run: {"step": 20, "dev_mean_at_k": 0.3, "target": 0.3}
                for run in tables.lr_runs(self.config)}


def kl_frame(first: int, last: int, before: float, after: float, bins: range, rollouts: int = 4) -> pd.DataFrame:
    """Diagnostic rows as training writes them: each rollout's bins, rollouts spread around the step's level."""
    rows = []
    for step, value in ((first, before), (last, after)):
        for r in range(rollouts):
            for i, b in enumerate(bins):
                rows.append({"step": step, "source": "diagnostic", "rollout": r, "bin_start": b, "bin_end": b + 7,
                             "kl_mean": value + 0.01 * (i % 3) + 0.02 * (r - (rollouts - 1) / 2), "n_tokens": 7})
    return pd.DataFrame(rows)


def paper_like(config: dict[str, Any]) -> Synthetic:
    """Numbers that agree with every claim of the paper."""
    s = Synthetic(config)
    s.set("-base", 0.2)
    s.set("-opd", 0.5)  # full OPD
    s.set("-opd_prefix", 0.6).set("-opd_schedule", 0.6)
    s.set("-opd_window", 0.3)
    s.flops_["-opd_schedule"] = 4e6
    for name in ("kl_frontier", "boundary_gap"):  # ours: the adaptive schedules reach the target cheaper
        s.flops_[f"-opd_schedule_{name}"] = 2e6
    s.set("large-opd_prefix", 0.6, "gpqa").set("large-opd_prefix", 0.6, "mmlu_pro")
    s.set("small-opd_prefix7", 0.1, "gpqa").set("small-opd_prefix7", 0.1, "mmlu_pro")
    s.set("-seqkd_prefix", 0.1)
    s.set("-gkd7-lam1-beta1", 0.6).set("-gkd7-lam1-beta0", 0.4).set("-gkd7-lam0-beta1", 0.3)
    s.set("-gkd7-lam0-beta0", 0.1)
    s.set("-lr", 0.4, "gpqa").set("-lr", 0.4, "mmlu_pro")  # lower lrs: worse OOD than the reference lr
    opd_steps = s.steps("x")
    s.step_rules += [("-opd", opd_steps[0], 0.3), ("-opd_prefix", opd_steps[0], 0.4)]
    log = config["training"]["log_steps"]
    length = config["experiments"]["windows"]["prefix"]
    set_kl(config, s, "large", kl_frame(min(log), max(log), 0.5, 0.3, range(0, 320, 7)))
    set_kl(config, s, "small", kl_frame(min(log), max(log), 0.3, 0.5, range(0, 320, 7)))
    assert length < 320
    return s


def set_kl(config: dict[str, Any], store: Synthetic, student: str, frame: pd.DataFrame) -> None:
    """The same diagnostic KL for every seed's prefix run of `student`."""
    for run in tables.kl_prefix_arms(config, findings.expand_runs(config))[student]:
        store.kl_[run] = frame


def verdicts(config: dict[str, Any], store: Synthetic, claim: str) -> set[str]:
    return {r.verdict for r in findings.evaluate(config, store) if r.claim == claim}


def test_verdict_rule():
    assert findings.verdict(0.1, 0.5, 0.0, "above") == HOLDS
    assert findings.verdict(-0.5, -0.1, 0.0, "above") == FAILS
    assert findings.verdict(0.0, 0.0, 0.0, "above") == FAILS  # no gain is not a gain
    assert findings.verdict(-0.1, 0.1, 0.0, "above") == INCONCLUSIVE
    assert findings.verdict(-0.5, -0.1, 0.0, "below") == HOLDS
    assert findings.verdict(0.1, 0.5, 0.0, "below") == FAILS
    assert findings.verdict(float("nan"), float("nan"), 0.0, "below") == INCONCLUSIVE
    with pytest.raises(ValueError, match="Unknown direction"):
        findings.verdict(0, 1, 0, "sideways")


def test_every_claim_holds_on_paper_like_numbers(config):
    results = findings.evaluate(config, paper_like(config))
    failing = [(r.claim, r.subject, r.verdict, r.estimate, r.lo, r.hi) for r in results if r.verdict != HOLDS]
    assert not failing
    claims = {r.claim for r in results}
    assert claims == {"4.2 in-domain", "4.2 MATH500", "4.2 approaches", "4.2 beats base", "4.2 out-of-domain",
                      "4.2 OPD vs SeqKD OOD", "4.2 scheduling", "Finding 1 (early)", "Finding 1 (late)", "Finding 2",
                      "Finding 3", "Finding 4.2", "Finding 5", "5.3 (i)", "5.3 (ii)", "5.3 (iii)", "Table 3 ordering",
                      "ours: kl_frontier vs linear", "ours: boundary_gap vs linear"}
    seeds = len(config["seeds"])
    assert all(r.seeds == f"{seeds} vs 1" for r in results if r.claim == "4.2 beats base")


def test_intervals_are_family_wise_within_a_claim(config):
    results = findings.evaluate(config, paper_like(config))
    m = pd.Series([r.claim for r in results]).value_counts()
    for r in results:
        assert r.alpha == pytest.approx(findings.ALPHA / m[r.claim])
        if r.se > 0:
            z = (r.hi - r.estimate) / r.se  # a wider quantile than the single comparison's when m > 1
            assert (z > 2.0) == (m[r.claim] > 1), (r.claim, z)


@pytest.mark.parametrize("claim, perturb", [
    ("4.2 in-domain", lambda s: s.set("-opd_prefix", 0.05, "aime25")),  # prefix below OPD-10 on AIME-25
    ("4.2 in-domain", lambda s: s.flops_.update({"-opd_prefix": 1e7})),  # prefix costs more than OPD-10
    ("4.2 MATH500", lambda s: s.set("-opd_prefix", 0.3, "math500")),
    ("4.2 approaches", lambda s: s.set("large-opd_prefix56", 0.2)),
    ("4.2 approaches", lambda s: s.flops_.update({"large-opd_prefix56": 5e6})),  # half of full OPD's FLOPs
    ("4.2 OPD vs SeqKD OOD", lambda s: s.set("-seqkd", 0.9, "gpqa").set("-seqkd", 0.9, "mmlu_pro")),
    ("4.2 beats base", lambda s: s.set("-base", 0.9)),
    ("4.2 out-of-domain", lambda s: s.set("small-opd_prefix7", 0.6, "gpqa").set("small-opd_prefix7", 0.6,
                                                                                 "mmlu_pro")),
    ("4.2 scheduling", lambda s: s.set("-opd_schedule", 0.3)),  # 20 points below full OPD
    ("4.2 scheduling", lambda s: s.flops_.update({"-opd_schedule": 1e7})),
    ("Finding 1 (early)", lambda s: s.flops_.update({"-opd_prefix7": 1e8})),  # the prefix's accuracy costs more
    ("Finding 1 (late)", lambda s: s.set("-opd_prefix56", 0.2)),
    ("Finding 4.2", lambda s: s.set("-seqkd_prefix", 0.6)),
    ("Finding 5", lambda s: s.set("-lr", 0.9, "gpqa").set("-lr", 0.9, "mmlu_pro")),
    ("5.3 (i)", lambda s: s.set("-gkd7-lam0-beta1", 0.8)),
    ("5.3 (ii)", lambda s: s.set("-gkd7-lam1-beta0", 0.1)),
    ("5.3 (iii)", lambda s: s.set("-gkd7-lam0-beta0", 0.5)),
    ("5.3 (iii)", lambda s: s.set("-gkd7-lam0-beta1", 0.1)),  # off-policy reverse KL below base
    ("Table 3 ordering", lambda s: s.set("large-opd_window28_56", 0.9)),
    ("ours: kl_frontier vs linear", lambda s: s.flops_.update({"-opd_schedule_kl_frontier": 8e6})),
    ("ours: boundary_gap vs linear", lambda s: s.set("-opd_schedule_boundary_gap", 0.2)),  # never reaches it
    ("ours: boundary_gap vs linear", lambda s: s.step_rules.extend(  # reaches it at step 50: 1e8 vs 8e7 FLOPs
        ("-opd_schedule_boundary_gap", step, 0.1) for step in (20, 30, 40))),
])
def test_perturbation_flips_verdict(config, claim, perturb):
    store = paper_like(config)
    assert verdicts(config, store, claim) == {HOLDS}
    perturb(store)
    assert FAILS in verdicts(config, store, claim)


def test_tail_kl_flips(config):
    store = paper_like(config)
    log = config["training"]["log_steps"]
    assert verdicts(config, store, "Finding 2") == verdicts(config, store, "Finding 3") == {HOLDS}
    set_kl(config, store, "large", kl_frame(min(log), max(log), 0.3, 0.5, range(0, 320, 7)))  # KL rises
    set_kl(config, store, "small", kl_frame(min(log), max(log), 0.5, 0.3, range(0, 320, 7)))  # tail KL falls
    assert verdicts(config, store, "Finding 2") == verdicts(config, store, "Finding 3") == {FAILS}


def test_kl_change_resamples_rollouts():
    """The bootstrap over rollouts estimates the spread of the KL change across repeated diagnostic draws (each
    rollout has its own level, so position bins are not independent), and the pooled estimate is unbiased."""
    rng = np.random.default_rng(0)

    def draw() -> pd.DataFrame:
        rows = []
        for step, level in ((0, 0.5), (30, 0.3)):
            for r in range(8):
                own = level + rng.normal(0, 0.1)  # a rollout's prompt sets its KL level
                for b in range(0, 140, 7):
                    n = int(rng.integers(3, 8))
                    rows.append({"step": step, "source": "diagnostic", "rollout": r, "bin_start": b,
                                 "bin_end": b + 7, "kl_mean": own + rng.normal(0, 0.05), "n_tokens": n})
        return pd.DataFrame(rows)

    fits = [findings.kl_change(draw(), 0, 30, 28, n_boot=400) for _ in range(150)]
    est, se = np.array([f[0] for f in fits]), np.array([f[1] for f in fits])
    assert {f[2] for f in fits} == {8}
    assert abs(est.mean() - (-0.2)) < 0.01
    assert 0.8 < se.mean() / est.std(ddof=1) < 1.25  # ~0.05 = 0.1 * sqrt(2 / 8); bins as units would give ~0.01


def test_noise_makes_a_small_difference_inconclusive(config):
    """One question's worth of difference out of 60 is within the question noise."""
    store = paper_like(config)
    store.set("-base", 0.6).set("-base", 0.6 - 1 / N_QUESTIONS, "math500")  # prefix OPD 0.6 everywhere
    assert INCONCLUSIVE in verdicts(config, store, "4.2 beats base")


def test_no_tail_tokens_is_inconclusive(config):
    store = paper_like(config)
    log = config["training"]["log_steps"]
    set_kl(config, store, "small", kl_frame(min(log), max(log), 0.3, 0.5, range(0, 64, 4)))  # short rollouts only
    assert verdicts(config, store, "Finding 3") == {INCONCLUSIVE}


def test_write_outputs(config, tmp_path):
    results = findings.evaluate(config, paper_like(config))
    pre = [preconditions.Precondition("P4", "KL concentrated early (Fig. 2)", "first bin >= 5x", "small: 9.0x",
                                      preconditions.MET)]
    findings.write(results, config, str(tmp_path / "findings.md"), str(tmp_path / "findings.csv"), pre)
    frame = pd.read_csv(tmp_path / "findings.csv")
    assert frame["kind"].tolist() == ["precondition"] + ["claim"] * len(results)
    assert set(frame.loc[frame["kind"] == "claim", "verdict"]) == {HOLDS}
    assert frame.loc[0, "verdict"] == preconditions.MET and frame.loc[0, "ours"] == "small: 9.0x"
    md = (tmp_path / "findings.md").read_text()
    assert "| Finding 5 |" in md and "estimate [interval] | level |" in md
    assert md.index("## Preconditions") < md.index("## Per claim") and "| P4 | KL concentrated early" in md


def test_inputs_cover_every_claim(config):
    """The workflow's input list names the suites at the fixed, chosen and matched steps and every curve read."""
    match = {run: {"step": 20} for run in tables.lr_runs(config)}
    files = set(findings.inputs(config, match))
    assert paths.at(paths.SUITE_SAMPLES, run="large-base", step=0, bench="gpqa") in files
    for seed in config["seeds"]:
        step = config["training"]["save_every"]
        assert paths.at(paths.SUITE_SAMPLES, run=f"small-opd-s{seed}", step=step, bench="aime25") in files
        assert paths.at(paths.CHOSEN_DIR, run=f"large-opd_prefix56-s{seed}") in files
        assert f"results/runs/large-opd_prefix28-s{seed}/kl_by_position.csv" in files
    assert paths.at(paths.SUITE_SAMPLES, run="large-opd_prefix28-lr2e-4-s0", step=20, bench="mmlu_pro") in files
    assert "results/eval/small-gkd7-lam0-beta0-lr2e-4-s0/curve" in files
    assert paths.LR_MATCH in files


def _pre(**status: str) -> list[preconditions.Precondition]:
    return [preconditions.Precondition(k, f"precondition {k}", "", "", status.get(k, preconditions.MET))
            for k in ("P1", "P2", "P3", "P4", "P5", "P6")]


def test_a_claim_on_a_benchmark_where_the_teacher_is_at_chance_is_not_testable(config):
    results = findings.evaluate(config, paper_like(config))
    teacher = {b: 0.95 for b in ("math500", "aime24", "aime25", "gpqa", "mmlu_pro")} | {"gpqa": 0.27}
    chance = dict.fromkeys(teacher, 0.25)  # a 4-option stand-in the teacher cannot do
    gated = findings.gate(results, _pre(), teacher, chance, config["dev_benchmark"])
    by_claim = findings.summary(gated).set_index("claim")["verdict"]
    assert by_claim["4.2 out-of-domain"] == findings.NOT_TESTABLE and by_claim["Finding 5"] == findings.NOT_TESTABLE
    assert by_claim["4.2 in-domain"] == HOLDS  # in-domain claims are untouched
    assert all("at chance on gpqa" in r.untestable for r in gated if r.claim == "4.2 out-of-domain")


def test_a_failed_precondition_gates_the_claims_that_need_it_and_the_roll_up_skips_them(config, tmp_path):
    results = findings.evaluate(config, paper_like(config))
    gated = findings.gate(results, _pre(P4=preconditions.NOT_MET), {}, {}, config["dev_benchmark"])
    by_claim = findings.summary(gated).set_index("claim")
    assert set(by_claim.loc[["Finding 2", "Finding 3"], "verdict"]) == {findings.NOT_TESTABLE}
    assert (by_claim.drop(["Finding 2", "Finding 3"])["verdict"] == HOLDS).all()
    gated = findings.gate(results, _pre(P3=preconditions.NOT_MET), {}, {}, config["dev_benchmark"])
    assert findings.summary(gated).set_index("claim").loc["Finding 4.2", "verdict"] == HOLDS  # SeqKD: no OPD
    assert findings.summary(gated).set_index("claim").loc["4.2 in-domain", "verdict"] == findings.NOT_TESTABLE
    # one untestable comparison of a claim leaves the claim to its testable ones
    mixed = [dataclasses.replace(r, untestable="x") if i == 0 else r for i, r in enumerate(results)]
    first = results[0].claim
    row = findings.summary(mixed).set_index("claim").loc[first]
    assert row["not_testable"] == 1 and row["verdict"] == HOLDS
    findings.write(gated, config, str(tmp_path / "f.md"), str(tmp_path / "f.csv"))
    assert "P3 not met" in (tmp_path / "f.md").read_text() and findings.ROLL_UP in (tmp_path / "f.md").read_text()
    assert findings.NOT_TESTABLE in set(pd.read_csv(tmp_path / "f.csv")["verdict"])


def test_every_claim_names_what_it_needs(config):
    claims = {findings.OURS if r.claim.startswith(findings.OURS) else r.claim
              for r in findings.evaluate(config, paper_like(config))}
    assert claims <= set(findings.CLAIM_NEEDS), claims - set(findings.CLAIM_NEEDS)


def test_reach_order_counts_a_run_that_never_reaches_the_target_as_last():
    assert findings.reach_order((1.0, True), (2.0, True)) == 1
    assert findings.reach_order((3.0, True), (2.0, True)) == -1
    assert findings.reach_order((9.0, True), (2.0, False)) == 1  # the other never reaches it
    assert findings.reach_order((1.0, False), (2.0, True)) == -1
    assert findings.reach_order((1.0, False), (2.0, False)) == 0
    assert findings.reach_order((2.0, True), (2.0, True)) == 0


def test_beyond_the_paper_states_whether_an_adaptive_schedule_wins(config, tmp_path):
    store = paper_like(config)
    findings.write(findings.evaluate(config, store), config, str(tmp_path / "a.md"), str(tmp_path / "a.csv"))
    assert "? yes: kl_frontier vs linear, boundary_gap vs linear." in (tmp_path / "a.md").read_text()
    store.flops_.update({"-opd_schedule_kl_frontier": 8e6, "-opd_schedule_boundary_gap": 8e6})
    findings.write(findings.evaluate(config, store), config, str(tmp_path / "b.md"), str(tmp_path / "b.csv"))
    assert "no adaptive schedule does so on every student (kl_frontier vs linear does not hold" in \
        (tmp_path / "b.md").read_text()


def test_seeds_that_disagree_make_a_claim_inconclusive(config):
    """The same mean gain over base, once agreed on by every seed and once carried by the spread of the seeds: the
    seed term of the interval turns the second inconclusive."""
    assert len(config["seeds"]) >= 3
    store = paper_like(config)
    assert verdicts(config, store, "4.2 beats base") == {HOLDS}
    for seed, p in zip(config["seeds"], (0.95, 0.25, 0.6), strict=False):
        store.set(f"-opd_prefix7-s{seed}", p)
    assert INCONCLUSIVE in verdicts(config, store, "4.2 beats base")
