"""The training-data sampling rule on OpenThoughts3's real schema, and the environments staying in step."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from rehearsal_fixtures import write_parquet_dataset

from prefix_opd.benchmarks import BenchmarkSourceError
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


def _offline_hub(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    """HF_HUB_CACHE=cache HF_HUB_OFFLINE=1 for this process (huggingface_hub reads them once, at import)."""
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def test_hub_openthoughts_is_read_from_its_downloaded_parquet_shards(tmp_path, monkeypatch):
    """`data.dataset` without `local_parquet`: the hub dataset's parquet shards through the hub cache (here
    offline), read as the local ones: the same rows give the same sample."""
    rows = [_row(i, f"What is {i % 7} + 1?", "math") for i in range(28)]
    write_parquet_dataset(tmp_path / "hub", "open-thoughts/OpenThoughts3-1.2M", rows, shards=3)
    _offline_hub(monkeypatch, tmp_path / "hub")
    data = {"source": "openthoughts", "dataset": "open-thoughts/OpenThoughts3-1.2M", "revision": "main",
            "domains": ["math"], "opd_questions": 7, "seqkd_examples": 20}
    sample_training_data(data, None, str(tmp_path / "q.jsonl"), str(tmp_path / "s.jsonl"), seed=3)
    for k, part in enumerate((rows[:10], rows[10:])):
        pq.write_table(pa.Table.from_pylist(part), tmp_path / f"local-{k}.parquet")
    local = dict(data, local_parquet=str(tmp_path / "local-*.parquet"))
    sample_training_data(local, None, str(tmp_path / "q2.jsonl"), str(tmp_path / "s2.jsonl"), seed=3)
    assert (tmp_path / "q.jsonl").read_bytes() == (tmp_path / "q2.jsonl").read_bytes()
    assert (tmp_path / "s.jsonl").read_bytes() == (tmp_path / "s2.jsonl").read_bytes()
    with pytest.raises(BenchmarkSourceError, match=r"^data.dataset open-thoughts/Other@main: .*could not be "
                                                   r"downloaded.*HF_HUB_CACHE="):
        sample_training_data(dict(data, dataset="open-thoughts/Other"), None, str(tmp_path / "q3.jsonl"),
                             str(tmp_path / "s3.jsonl"), seed=3)


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
