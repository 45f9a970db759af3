"""The training-data sampling rule on OpenThoughts3's real schema, and the environments staying in step."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from prefix_opd.data import read_jsonl, sample_training_data

ROOT = Path(__file__).resolve().parents[1]


def _row(i: int, question: str, domain: str, closed: bool = True) -> dict:
    answer = f"<think>\nstep {i}\n" + ("</think>\n\nThe answer is \\boxed{1}." if closed else "still thinking")
    return {"difficulty": 5, "source": "test", "domain": domain,
            "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]}


def test_openthoughts_parquet_sampling(tmp_path):
    """Questions repeat (dedupe for OPD), domains filter, answers without </think> are dropped, two shards."""
    rows = [_row(i, f"What is {i % 7} + 1?", "math") for i in range(28)]  # 7 distinct questions, 4 answers each
    rows += [_row(100 + i, f"Write code {i}", "code") for i in range(5)]
    rows += [_row(200, "Unclosed?", "math", closed=False)]
    for k, part in enumerate((rows[:17], rows[17:])):
        pq.write_table(pa.Table.from_pylist(part), tmp_path / f"train-{k:05d}.parquet")
    data = {"source": "openthoughts", "local_parquet": str(tmp_path / "train-*.parquet"), "domains": ["math"],
            "opd_questions": 7, "seqkd_examples": 20}
    q, s = tmp_path / "q.jsonl", tmp_path / "s.jsonl"
    sample_training_data(data, None, str(q), str(s), seed=3)
    questions, pairs = read_jsonl(q), read_jsonl(s)
    assert len({r["prompt"] for r in questions}) == 7 == len(questions)
    assert all(r["domain"] == "math" for r in questions + pairs) and len(pairs) == 20
    assert all(not r["response"].startswith("<think>") and "</think>" in r["response"] for r in pairs)
    assert not any(r["prompt"] == "Unclosed?" for r in questions + pairs)
    again = tmp_path / "q2.jsonl"
    sample_training_data(data, None, str(again), str(tmp_path / "s2.jsonl"), seed=3)
    assert again.read_bytes() == q.read_bytes()


def test_conda_files_install_the_pinned_requirement_files():
    """Each envs/<stage>.yaml's pip section installs exactly envs/<stage>.txt (the Makefile's venv)."""
    for conda in sorted((ROOT / "envs").glob("*.yaml")):
        spec = yaml.safe_load(conda.read_text())
        pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)
        assert pip == [f"-r {conda.stem}.txt"], conda.name
        assert (ROOT / "envs" / f"{conda.stem}.txt").exists()


def test_every_rule_uses_a_conda_file_that_exists():
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()):
            assert (smk.parent / env).resolve().exists(), f"{smk.name}: {env}"
