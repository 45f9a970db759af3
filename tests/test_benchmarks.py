"""Paper benchmarks: each real schema through the conversion, GPQA shuffling, MMLU-Pro sampling, and the
one-line errors for gated / offline datasets (with the exception classes `datasets` really raises)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import datasets
import httpx2
import pytest
from datasets.exceptions import DatasetNotFoundError
from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, OfflineModeIsEnabled

from prefix_opd import benchmarks as bm
from prefix_opd.grading import grade_response
from prefix_opd.toy.world import make_benchmark

PROMPTS = {"math": "Put the answer in \\boxed{}.", "multiple_choice": "Box the letter."}
RECORD_KEYS = set(make_benchmark("gpqa", {"size": 1, "tags": "held_out", "lines": [3, 4]}, 0,
                                 {"math": "m", "multiple_choice": "c"})[0])


def gpqa_rows(n: int, offset: int = 0) -> dict[str, list]:
    ids = [f"rec{i + offset:03d}" for i in range(n)]
    return {
        "Pre-Revision Question": ["old"] * n,
        "Question": [f"Question {i + offset}?" for i in range(n)],
        "Correct Answer": [f" right {i + offset} " for i in range(n)],
        "Incorrect Answer 1": [f"wrong1 {i + offset}" for i in range(n)],
        "Incorrect Answer 2": [f"wrong2 {i + offset}" for i in range(n)],
        "Incorrect Answer 3": [f"wrong3 {i + offset}" for i in range(n)],
        "Explanation": ["because"] * n,
        "Record ID": ids,
        "Subdomain": ["Physics"] * n,
    }


def mmlu_pro_rows(n: int) -> dict[str, list]:
    n_opts = [10 if i % 3 else 4 for i in range(n)]  # MMLU-Pro has up to 10 options, some fewer
    answer_index = [(7 * i) % k for i, k in enumerate(n_opts)]
    return {
        "question_id": [70 + i for i in range(n)],
        "question": [f"MMLU question {i}" for i in range(n)],
        "options": [[f"opt{i}-{j}" for j in range(k)] for i, k in enumerate(n_opts)],
        "answer": ["ABCDEFGHIJ"[a] for a in answer_index],
        "answer_index": answer_index,
        "cot_content": [""] * n,
        "category": ["math"] * n,
        "src": ["ori_mmlu-x"] * n,
    }


FAKE_HUB = {
    ("HuggingFaceH4/MATH-500", None, "test"): {
        "problem": ["What is $1+1$?", "Simplify $\\frac{50}{16}$."],
        "solution": ["2", "25/8"],
        "answer": ["2", "\\frac{25}{8}"],
        "subject": ["Algebra", "Algebra"],
        "level": [1, 2],
        "unique_id": ["test/algebra/1.json", "test/algebra/2.json"],
    },
    ("HuggingFaceH4/aime_2024", None, "train"): {
        "id": [60, 61], "problem": ["AIME problem A", "AIME problem B"], "solution": ["...", "..."],
        "answer": ["204", "25"], "url": ["u1", "u2"], "year": ["2024", "2024"],
    },
    ("opencompass/AIME2025", "AIME2025-I", "test"): {"question": ["I-1", "I-2"], "answer": ["70", "588"]},
    ("opencompass/AIME2025", "AIME2025-II", "test"): {"question": ["II-1"], "answer": ["240"]},
    ("Idavidrein/gpqa", "gpqa_diamond", "train"): gpqa_rows(12),
    ("TIGER-Lab/MMLU-Pro", None, "test"): mmlu_pro_rows(40),
}


@pytest.fixture
def fake_hub(monkeypatch):
    """`datasets.load_dataset` serving small in-memory datasets in each benchmark's real schema."""
    calls = []

    def load_dataset(path, name=None, split=None, revision=None, streaming=False, **kw):
        calls.append((path, name, split, revision))
        return datasets.Dataset.from_dict(FAKE_HUB[(path, name, split)])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_math_benchmarks_keep_the_toy_record_format(fake_hub):
    for name, n in (("math500", 2), ("aime24", 2), ("aime25", 3)):
        recs = bm.prepare_benchmark(name, {}, PROMPTS, seed=0)
        assert len(recs) == n
        for r in recs:
            assert set(r) == RECORD_KEYS
            assert r["kind"] == "math" and r["options"] == [] and r["n_options"] == 0
            assert r["prompt"].endswith("\n" + PROMPTS["math"])
        assert [r["id"] for r in recs] == sorted(r["id"] for r in recs)
    m5 = bm.prepare_benchmark("math500", {"revision": "abc123"}, PROMPTS, 0)
    assert m5[1]["gold"] == "\\frac{25}{8}" and m5[1]["prompt"] == "Simplify $\\frac{50}{16}$.\n" + PROMPTS["math"]
    assert grade_response("</think> so \\boxed{3.125}", m5[1]["gold"], "math").correct
    assert ("HuggingFaceH4/MATH-500", None, "test", "abc123") in fake_hub
    a25 = bm.prepare_benchmark("aime25", {}, PROMPTS, 0)
    assert [r["gold"] for r in a25] == ["70", "588", "240"]  # both halves, I then II
    assert [r["id"] for r in a25] == ["aime25-0000", "aime25-0001", "aime25-0002"]
    assert bm.prepare_benchmark("aime24", {}, PROMPTS, 0)[0]["gold"] == "204"


def test_gpqa_options_shuffled_per_question_and_gold_follows_the_correct_answer(fake_hub):
    recs = bm.prepare_benchmark("gpqa", {"configs": ["gpqa_diamond"]}, PROMPTS, seed=0)
    assert len(recs) == 12
    for i, r in enumerate(recs):
        assert set(r) == RECORD_KEYS and r["kind"] == "multiple_choice" and r["n_options"] == 4
        assert sorted(r["options"]) == sorted([f"right {i}", f"wrong1 {i}", f"wrong2 {i}", f"wrong3 {i}"])
        assert r["options"]["ABCD".index(r["gold"])] == f"right {i}"
        assert f"({r['gold']}) right {i}" in r["prompt"]
        assert r["prompt"].endswith("\n" + PROMPTS["multiple_choice"])
        assert grade_response(f"</think> \\boxed{{{r['gold']}}}", r["gold"], r["kind"], r["n_options"]).correct
    assert len({r["gold"] for r in recs}) > 1  # the correct answer is not always first
    assert bm.prepare_benchmark("gpqa", {}, PROMPTS, seed=0) == recs  # deterministic
    other_seed = bm.prepare_benchmark("gpqa", {}, PROMPTS, seed=1)
    assert [r["options"] for r in other_seed] != [r["options"] for r in recs]
    # the order of a question depends on (seed, its id) only, not on its position or its neighbours
    row = {key: values[0] for key, values in gpqa_rows(1, offset=5).items()}
    shifted = bm._gpqa([row], PROMPTS, 0)
    assert shifted[0]["options"] == recs[5]["options"] and shifted[0]["gold"] == recs[5]["gold"]


def test_shuffle_options_is_a_stable_function_of_seed_and_id():
    opts, gold = bm.shuffle_options("c", ["x", "y", "z"], 7, "recA")
    assert bm.shuffle_options("c", ["x", "y", "z"], 7, "recA") == (opts, gold)
    assert opts["ABCD".index(gold)] == "c"
    golds = {bm.shuffle_options("c", ["x", "y", "z"], 7, f"rec{i}")[1] for i in range(40)}
    assert golds == set("ABCD")


def test_mmlu_pro_fixed_seed_sample_keeps_question_ids(fake_hub):
    recs = bm.prepare_benchmark("mmlu_pro", {"sample": 10}, PROMPTS, seed=3)
    assert len(recs) == 10
    assert recs == bm.prepare_benchmark("mmlu_pro", {"sample": 10}, PROMPTS, seed=3)
    assert [r["id"] for r in recs] != [r["id"] for r in bm.prepare_benchmark("mmlu_pro", {"sample": 10},
                                                                                PROMPTS, seed=4)]
    rows = mmlu_pro_rows(40)
    by_qid = {qid: i for i, qid in enumerate(rows["question_id"])}
    for r in recs:
        assert set(r) == RECORD_KEYS and r["kind"] == "multiple_choice"
        qid = int(r["id"].removeprefix("mmlu_pro-"))
        i = by_qid[qid]
        assert r["options"] == rows["options"][i] and r["n_options"] == len(rows["options"][i]) <= 10
        assert r["gold"] == rows["answer"][i] and r["options"]["ABCDEFGHIJ".index(r["gold"])] == \
            rows["options"][i][rows["answer_index"][i]]
        last = "ABCDEFGHIJ"[r["n_options"] - 1]
        assert f"({last}) opt{i}-{r['n_options'] - 1}\n" in r["prompt"] and f"({chr(ord(last) + 1)})" not in r["prompt"]
    assert [r["id"] for r in recs] == sorted(r["id"] for r in recs)  # dataset order kept
    assert len(bm.prepare_benchmark("mmlu_pro", {}, PROMPTS, 0)) == 40  # default 500 > 40 rows: all


def test_sample_rows_is_seeded():
    rows = [{"i": i} for i in range(100)]
    assert bm.sample_rows(rows, 10, 0) == bm.sample_rows(rows, 10, 0)
    assert bm.sample_rows(rows, 10, 0) != bm.sample_rows(rows, 10, 1)
    assert bm.sample_rows(rows, 200, 0) == rows


def _gated_error() -> Exception:
    """What datasets 5.x raises for a gated dataset without access (load.py: `raise ... from GatedRepoError`)."""
    response = httpx2.Response(401, request=httpx2.Request("GET", "https://huggingface.co/datasets/x"))
    try:
        try:
            raise GatedRepoError("401 Client Error. Cannot access gated repo", response=response)
        except GatedRepoError as e:
            raise DatasetNotFoundError("Dataset 'Idavidrein/gpqa' is a gated dataset on the Hub. You must be "
                                       "authenticated to access it.") from e
    except DatasetNotFoundError as err:
        return err


def _offline_error(dataset_id: str) -> Exception:
    """What datasets 5.x raises offline without a cached copy (a builtin ConnectionError)."""
    try:
        try:
            raise LocalEntryNotFoundError("cannot find the requested files in the disk cache") from \
                OfflineModeIsEnabled("Cannot reach https://huggingface.co: offline mode is enabled.")
        except LocalEntryNotFoundError as e:
            raise ConnectionError(f"Couldn't reach '{dataset_id}' on the Hub (LocalEntryNotFoundError)") from e
    except ConnectionError as err:
        return err


@pytest.mark.parametrize("kind", ["gated", "offline", "not_found", "other"])
def test_loading_errors_become_one_line(monkeypatch, kind):
    converted = []
    monkeypatch.setattr(bm, "CONVERTERS", {k: lambda *a: converted.append(a) or [] for k in bm.CONVERTERS})
    errors = {
        "gated": _gated_error(),
        "offline": _offline_error("Idavidrein/gpqa"),
        "not_found": DatasetNotFoundError("Dataset 'Idavidrein/gpqa' doesn't exist on the Hub or cannot be accessed."),
        "other": ValueError("boom"),
    }

    def load_dataset(*a, **kw):
        raise errors[kind]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setenv("HF_TOKEN", "hf_dummy")
    if kind == "other":
        with pytest.raises(ValueError, match="boom"):
            bm.prepare_benchmark("gpqa", {}, PROMPTS, 0)
        return
    with pytest.raises(bm.BenchmarkSourceError) as info:
        bm.prepare_benchmark("gpqa", {}, PROMPTS, 0)
    message = str(info.value)
    assert "\n" not in message and message.startswith("Idavidrein/gpqa")
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert not converted  # raised before anything else ran
    expected = {
        "gated": "Idavidrein/gpqa is gated: accept its terms on the Hub",
        "offline": "Idavidrein/gpqa could not be downloaded (no network?) and no local copy exists; run once "
                   "with network or set HF_HUB_OFFLINE=0 / copy the caches",
        "not_found": "was not found on the Hub",
    }[kind]
    assert expected in message
    if kind == "gated":
        assert "export HF_TOKEN=..." in message


def test_missing_token_for_a_gated_dataset_reads_as_gated(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(bm, "_has_token", lambda: False)
    err = DatasetNotFoundError("Dataset 'Idavidrein/gpqa' doesn't exist on the Hub or cannot be accessed.")
    assert "is gated" in bm.explain_load_error(err, "Idavidrein/gpqa", "gpqa_diamond", "main")


def test_offline_and_gated_without_token_names_both(monkeypatch):
    monkeypatch.setattr(bm, "_has_token", lambda: False)
    message = bm.explain_load_error(_offline_error("Idavidrein/gpqa"), "Idavidrein/gpqa", "gpqa_diamond", "main")
    assert "\n" not in message and "could not be downloaded" in message and "export HF_TOKEN=..." in message
    other = bm.explain_load_error(_offline_error("HuggingFaceH4/MATH-500"), "HuggingFaceH4/MATH-500", None, "main")
    assert "HF_TOKEN" not in other


def test_streaming_errors_mid_stream_are_translated(monkeypatch):
    def rows():
        yield {"a": 1}
        raise _offline_error("open-thoughts/OpenThoughts3-1.2M")

    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **kw: rows())
    stream = bm.load_hub_dataset("open-thoughts/OpenThoughts3-1.2M", None, "train", "main", streaming=True)
    assert next(stream) == {"a": 1}
    with pytest.raises(bm.BenchmarkSourceError, match="OpenThoughts3-1.2M could not be downloaded"):
        next(stream)


def test_real_offline_load_without_a_cache_is_one_line(tmp_path):
    """The real `datasets.load_dataset` with HF_HUB_OFFLINE=1 and an empty cache: no network needed."""
    code = textwrap.dedent("""
        import json
        from prefix_opd.benchmarks import BenchmarkSourceError, prepare_benchmark
        try:
            prepare_benchmark("gpqa", {}, {"math": "m", "multiple_choice": "c"}, 0)
        except BenchmarkSourceError as err:
            print(json.dumps(str(err)))
    """)
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "HF_TOKEN": "hf_dummy"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    message = json.loads(out.stdout.strip().splitlines()[-1])
    assert message.startswith("Idavidrein/gpqa could not be downloaded (no network?) and no local copy exists")
    assert "\n" not in message
