"""A run's evaluation job: dev curve, dev-chosen step, and the chosen checkpoint on the full suite."""

from __future__ import annotations

import json

import pandas as pd
from engine_fixtures import merged_config, save_tiny_model

from prefix_opd.data import read_jsonl, write_jsonl
from prefix_opd.evaluate import evaluate_checkpoint, evaluate_run
from prefix_opd.selection import choose_step
from prefix_opd.toy.world import make_benchmark


def test_run_evaluation_reuses_the_curve_and_matches_a_fresh_suite(tmp_path):
    config = merged_config()
    spec = {"size": 6, "tags": "in_domain", "lines": [2, 3]}
    files = {}
    for name in ("aime24", "math500"):
        files[name] = str(tmp_path / f"{name}.jsonl")
        write_jsonl(files[name], make_benchmark(name, spec, 0, config["prompts"]))
    for step, seed in ((10, 3), (20, 4)):
        save_tiny_model(tmp_path / "ckpt" / f"step_{step}", seed)
    eval_cfg = dict(config["eval"], max_new_tokens=24)
    samples = {"aime24": 2, "math500": 2}
    curve, choice, chosen = evaluate_run(str(tmp_path / "ckpt"), {"aime24": files["aime24"]}, files, "aime24",
                                         samples, eval_cfg, str(tmp_path / "curve"), str(tmp_path / "chosen"),
                                         seed=5, threads=1)
    assert choice == choose_step(pd.DataFrame(curve), "aime24")
    assert [r["benchmark"] for r in chosen] == ["aime24", "math500"]
    step = choice["step"]
    # the dev set at the chosen step is the curve's own evaluation, copied
    assert read_jsonl(tmp_path / "chosen" / "aime24.jsonl") == read_jsonl(tmp_path / "curve" / f"step_{step}" /
                                                                         "aime24.jsonl")
    # and the same as evaluating the chosen checkpoint afresh, as the other benchmark is
    fresh = evaluate_checkpoint(str(tmp_path / "ckpt" / f"step_{step}"), files, samples, eval_cfg,
                                str(tmp_path / "fresh"), 5, 1)
    for name in files:
        assert read_jsonl(tmp_path / "chosen" / f"{name}.jsonl") == read_jsonl(tmp_path / "fresh" / f"{name}.jsonl")
        got = json.loads((tmp_path / "chosen" / f"{name}.json").read_text())
        assert got["mean_at_k"] == fresh[name]["mean_at_k"]
