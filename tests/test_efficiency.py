"""The accuracy-per-FLOP table on synthetic curves: the target, the first checkpoint that reaches it, the seeds
that never do, the ratio to full OPD, and the signal FLOPs of an adaptive schedule."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from prefix_opd import efficiency, paths

DEV = "aime24"


def _write_run(run: str, accuracy: list[float], flops_per_step: float, signal_per_step: float = 0.0) -> None:
    steps = [10 * (i + 1) for i in range(len(accuracy))]
    curve = Path(paths.at(paths.CURVE, run=run))
    curve.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"benchmark": DEV, "step": steps, "mean_at_k": accuracy}).to_csv(curve, index=False)
    metrics = Path(paths.at(paths.METRICS, run=run))
    metrics.parent.mkdir(parents=True, exist_ok=True)
    all_steps = list(range(1, steps[-1] + 1))
    pd.DataFrame({"step": all_steps, "flops_cum": [flops_per_step * s for s in all_steps],
                  "signal_flops": [signal_per_step] * len(all_steps)}).to_csv(metrics, index=False)


@pytest.fixture
def study(tmp_path, monkeypatch) -> dict:
    monkeypatch.chdir(tmp_path)
    arms = {"opd": ([0.2, 0.5, 0.8], [0.2, 0.6, 0.8], 10.0, 0.0),  # final 0.8 -> target 0.9 x 80 = 72%
            "opd_prefix_7": ([0.75, 0.76, 0.7], [0.5, 0.6, 0.7], 1.0, 0.0),  # one seed never reaches 72%
            "opd_schedule_kl": ([0.3, 0.75, 0.8], [0.3, 0.72, 0.8], 2.0, 0.5)}
    students = []
    for key, (a, b, f, sig) in arms.items():
        _write_run(f"small-{key}-s0", a, f, sig)
        _write_run(f"small-{key}-s1", b, f, sig)
    students.append(("small", [(k, k, [f"small-{k}-s0", f"small-{k}-s1"]) for k in arms]))
    return {"dev": DEV, "reach": 0.9, "students": students, "schedules": ["kl: kl_frontier (...)"]}


def test_table_reads_the_first_checkpoint_at_the_target(study):
    frame = efficiency.table(study).set_index("arm")
    assert frame["target"].iloc[0] == pytest.approx(72.0)
    assert frame.loc["opd", "flops_to_reach"] == pytest.approx(300.0)  # both seeds reach it at step 30
    assert frame.loc["opd_schedule_kl", "flops_to_reach"] == pytest.approx(40.0)  # step 20 x 2 FLOPs
    assert frame.loc["opd_schedule_kl", "vs_full_opd"] == pytest.approx(40 / 300)
    assert frame.loc["opd_schedule_kl", "signal_flops"] == pytest.approx(0.5 * 30)
    assert frame.loc["opd_prefix_7", "reached"] == 1 and math.isnan(frame.loc["opd_prefix_7", "flops_to_reach"])
    assert frame.loc["opd", "final_dev"] == pytest.approx(80.0) and frame.loc["opd", "final_dev_sd"] == 0.0


def test_write_gives_csv_markdown_and_latex(study, tmp_path):
    files = tuple(str(tmp_path / f"t.{e}") for e in ("csv", "md", "tex"))
    efficiency.write(study, files)
    md = Path(files[1]).read_text()
    assert "target 72.0%" in md and "| opd_prefix_7 | 2 | 70.0 ± 0.0 |" in md and "1/2" in md
    assert len(pd.read_csv(files[0])) == 3 and "\\begin{table}" in Path(files[2]).read_text()
