"""The paper's five benchmarks from the Hugging Face Hub, in the toy world's record format.

Every benchmark file holds one JSON record per question:
``{id, prompt, gold, kind: "math" | "multiple_choice", options, n_options}`` (as `toy/world.py` writes),
where ``prompt`` is the user turn: the question, the lettered options for multiple choice, then the
instruction from ``config.prompts``. Sources (docs/design.md section 7) are pinned in ``benchmark_sources``:

* math500: ``HuggingFaceH4/MATH-500``, test, problem/answer;
* aime24: ``HuggingFaceH4/aime_2024``, train, problem/answer;
* aime25: ``opencompass/AIME2025``, configs AIME2025-I and AIME2025-II, test, question/answer;
* gpqa: ``Idavidrein/gpqa``, gpqa_diamond, train (gated); the four answers shuffled with a seed derived
  from the study seed and the question's id, gold = the correct answer's letter;
* mmlu_pro: ``TIGER-Lab/MMLU-Pro``, test; a fixed-seed sample of 500 questions (ids keep ``question_id``),
  up to 10 options A-J, gold = the dataset's answer letter.

Loading is the first thing a job does, and a missing network or a gated dataset becomes one line that
names the dataset and the fix (`BenchmarkSourceError`), before any sampling.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LETTERS = "ABCDEFGHIJ"
MMLU_PRO_SAMPLE = 500
GATED = ("Idavidrein/gpqa",)
NETWORK_ERRORS = ("ConnectError", "ConnectTimeout", "ReadTimeout", "TimeoutException", "NetworkError")
"""httpx(2) transport errors, matched by name: huggingface_hub 2.x uses `httpx2`, older releases `httpx`."""

DEFAULT_SOURCES: dict[str, dict[str, Any]] = {
    "math500": {"dataset": "HuggingFaceH4/MATH-500", "split": "test"},
    "aime24": {"dataset": "HuggingFaceH4/aime_2024", "split": "train"},
    "aime25": {"dataset": "opencompass/AIME2025", "configs": ["AIME2025-I", "AIME2025-II"], "split": "test"},
    "gpqa": {"dataset": "Idavidrein/gpqa", "configs": ["gpqa_diamond"], "split": "train"},
    "mmlu_pro": {"dataset": "TIGER-Lab/MMLU-Pro", "split": "test", "sample": MMLU_PRO_SAMPLE},
}


class BenchmarkSourceError(RuntimeError):
    """A dataset that cannot be loaded; the message is one line naming the dataset and the fix."""


# ---------------------------------------------------------------------------------------------- loading


def _chain(err: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or (None if cur.__suppress_context__ else cur.__context__)


def _has_token() -> bool:
    if os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN"):
        return True
    try:
        from huggingface_hub import get_token

        return get_token() is not None
    except Exception:  # an unreadable token file is no token
        return False


def gated_message(dataset_id: str) -> str:
    return (f"{dataset_id} is gated: accept its terms on the Hub (https://huggingface.co/datasets/{dataset_id}) "
            "and export HF_TOKEN=... (a token of the account that accepted them)")


def offline_message(dataset_id: str) -> str:
    from datasets import config as ds_config
    from huggingface_hub import constants

    return (f"{dataset_id} could not be downloaded (no network?) and no local copy exists; run once with network "
            f"or set HF_HUB_OFFLINE=0 / copy the caches (HF_DATASETS_CACHE={ds_config.HF_DATASETS_CACHE}, "
            f"HF_HUB_CACHE={constants.HF_HUB_CACHE})")


def explain_load_error(err: BaseException, dataset_id: str, config: str | None, revision: str) -> str | None:
    """The one-line message for a known loading failure of ``dataset_id``, or None for anything else.

    What `datasets` 5.x raises (checked in its `load.py`): a gated dataset without access is a
    `datasets.exceptions.DatasetNotFoundError` ("... is a gated dataset on the Hub ...") caused by
    `huggingface_hub.errors.GatedRepoError`; no network, or `HF_HUB_OFFLINE=1` without a cached copy, is a
    builtin `ConnectionError` ("Couldn't reach '<id>' on the Hub (OfflineModeIsEnabled)") caused by
    `huggingface_hub.errors.OfflineModeIsEnabled` / `LocalEntryNotFoundError` / an httpx connect error.
    """
    from datasets.exceptions import DatasetNotFoundError
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, OfflineModeIsEnabled

    chain = list(_chain(err))
    gated = any(isinstance(e, GatedRepoError) for e in chain) or any(
        isinstance(e, DatasetNotFoundError) and "gated" in str(e) for e in chain)
    if gated:
        return gated_message(dataset_id)
    offline = any(isinstance(e, ConnectionError | OfflineModeIsEnabled | LocalEntryNotFoundError | TimeoutError)
                  or type(e).__name__ in NETWORK_ERRORS for e in chain)
    if offline:
        also = f"; it is also gated: {gated_message(dataset_id)}" if dataset_id in GATED and not _has_token() else ""
        return offline_message(dataset_id) + also
    if any(isinstance(e, DatasetNotFoundError) for e in chain):
        if dataset_id in GATED and not _has_token():
            return gated_message(dataset_id)
        return (f"{dataset_id} (config {config}, revision {revision}) was not found on the Hub or cannot be "
                "accessed; check benchmark_sources / data.dataset in the config (id, config, split, revision)")
    return None


def _guarded(rows: Iterable[dict[str, Any]], dataset_id: str, config: str | None, revision: str
             ) -> Iterator[dict[str, Any]]:
    """Iterate a streamed dataset, turning a mid-stream network failure into the one-line error."""
    try:
        yield from rows
    except Exception as err:
        message = explain_load_error(err, dataset_id, config, revision)
        if message is None:
            raise
        raise BenchmarkSourceError(message) from None


def load_hub_dataset(dataset_id: str, config: str | None, split: str, revision: str = "main",
                     streaming: bool = False) -> Any:
    """`datasets.load_dataset` with gated / offline failures as one-line `BenchmarkSourceError`s.

    Returns a `datasets.Dataset` (or, when streaming, an iterator over its rows). The dataset is resolved
    here, eagerly, so the error comes before any sampling.
    """
    import datasets

    try:
        ds = datasets.load_dataset(dataset_id, config, split=split, revision=revision, streaming=streaming)
    except Exception as err:
        message = explain_load_error(err, dataset_id, config, revision)
        if message is None:
            raise
        raise BenchmarkSourceError(message) from None
    return _guarded(ds, dataset_id, config, revision) if streaming else ds


# ------------------------------------------------------------------------------------------- conversion


def user_message(question: str, instruction: str, options: list[str] | None = None) -> str:
    """The question, the lettered options (multiple choice) one per line, then the instruction."""
    text = question.strip()
    if options:
        text += "\n" + "\n".join(f"({LETTERS[i]}) {opt}" for i, opt in enumerate(options))
    return f"{text}\n{instruction}"


def math_record(rid: str, question: str, answer: Any, prompts: dict[str, str]) -> dict[str, Any]:
    return {"id": rid, "prompt": user_message(question, prompts["math"]), "gold": str(answer).strip(),
            "kind": "math", "options": [], "n_options": 0}


def choice_record(rid: str, question: str, options: list[str], gold: str, prompts: dict[str, str]
                  ) -> dict[str, Any]:
    if not 1 <= len(options) <= len(LETTERS):
        raise ValueError(f"{rid}: {len(options)} options; a multiple-choice question needs 1..{len(LETTERS)}")
    if gold not in LETTERS[: len(options)]:
        raise ValueError(f"{rid}: gold letter '{gold}' is not among the {len(options)} options")
    return {"id": rid, "prompt": user_message(question, prompts["multiple_choice"], options), "gold": gold,
            "kind": "multiple_choice", "options": list(options), "n_options": len(options)}


def question_seed(seed: int, question_id: str) -> int:
    """A per-question seed from the study seed and the question's id (stable across processes)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{question_id}".encode()).digest()[:8], "big")


def shuffle_options(correct: str, incorrect: list[str], seed: int, question_id: str) -> tuple[list[str], str]:
    """GPQA: the correct answer and the distractors in a per-question seeded order; (options, gold letter)."""
    options = [correct, *incorrect]
    order = list(range(len(options)))
    random.Random(question_seed(seed, question_id)).shuffle(order)
    shuffled = [options[i] for i in order]
    return shuffled, LETTERS[order.index(0)]


def _math500(rows: list[dict[str, Any]], prompts: dict[str, str], seed: int) -> list[dict[str, Any]]:
    return [math_record(f"math500-{i:04d}", r["problem"], r["answer"], prompts) for i, r in enumerate(rows)]


def _aime24(rows: list[dict[str, Any]], prompts: dict[str, str], seed: int) -> list[dict[str, Any]]:
    return [math_record(f"aime24-{i:04d}", r["problem"], r["answer"], prompts) for i, r in enumerate(rows)]


def _aime25(rows: list[dict[str, Any]], prompts: dict[str, str], seed: int) -> list[dict[str, Any]]:
    return [math_record(f"aime25-{i:04d}", r["question"], r["answer"], prompts) for i, r in enumerate(rows)]


def _gpqa(rows: list[dict[str, Any]], prompts: dict[str, str], seed: int) -> list[dict[str, Any]]:
    out = []
    for i, r in enumerate(rows):
        rid = f"gpqa-{i:04d}"
        qid = str(r.get("Record ID") or rid)
        incorrect = [str(r[f"Incorrect Answer {j}"]).strip() for j in (1, 2, 3)]
        options, gold = shuffle_options(str(r["Correct Answer"]).strip(), incorrect, seed, qid)
        out.append(choice_record(rid, r["Question"], options, gold, prompts))
    return out


def _mmlu_pro(rows: list[dict[str, Any]], prompts: dict[str, str], seed: int) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        rid = f"mmlu_pro-{int(r['question_id']):05d}"
        out.append(choice_record(rid, r["question"], [str(o) for o in r["options"]], str(r["answer"]).strip(),
                                 prompts))
    return out


CONVERTERS: dict[str, Callable[[list[dict[str, Any]], dict[str, str], int], list[dict[str, Any]]]] = {
    "math500": _math500, "aime24": _aime24, "aime25": _aime25, "gpqa": _gpqa, "mmlu_pro": _mmlu_pro,
}


def sample_rows(rows: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """A fixed-seed sample of ``n`` rows, kept in dataset order (all rows when there are fewer)."""
    if n >= len(rows):
        if n > len(rows):
            log.warning("asked for a sample of %d but the source has only %d rows: taking all", n, len(rows))
        return list(rows)
    keep = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [rows[i] for i in keep]


def load_rows(source: dict[str, Any], name: str = "") -> list[dict[str, Any]]:
    """Every row of a source: each of its configs in order (AIME-25 has two halves), concatenated; logs the
    commit the revision resolved to."""
    from .hub import log_commit

    rows: list[dict[str, Any]] = []
    revision = source.get("revision", "main")
    for config in source.get("configs") or [None]:
        ds = load_hub_dataset(source["dataset"], config, source["split"], revision)
        if ds.cache_files:  # <cache>/<owner>___<name>/<config>/<version>/<commit>/<files>: datasets names it so
            log_commit(f"benchmark_sources.{name}.revision", source["dataset"], revision,
                       Path(ds.cache_files[0]["filename"]).parent.name)
        rows += [dict(r) for r in ds]
    return rows


def prepare_benchmark(name: str, source_cfg: dict[str, Any], prompts: dict[str, str], seed: int
                      ) -> list[dict[str, Any]]:
    """The records of benchmark ``name`` from its (pinned) source; ``source_cfg`` overrides the defaults."""
    if name not in CONVERTERS:
        raise ValueError(f"unknown benchmark '{name}'; choose from {sorted(CONVERTERS)}")
    source_cfg = dict(source_cfg or {})
    default = DEFAULT_SOURCES[name]
    same = source_cfg.get("dataset", default["dataset"]) == default["dataset"]
    source = default | source_cfg if same else source_cfg  # another dataset: its own settings only
    rows = load_rows(source, name)
    if source.get("sample"):
        rows = sample_rows(rows, int(source["sample"]), seed)
    records = CONVERTERS[name](rows, prompts, seed)
    ids = [r["id"] for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{name}: duplicate question ids in {source['dataset']}")
    log.info("%s: %d questions from %s (%s, revision %s)", name, len(records), source["dataset"],
             source.get("configs") or "default config", source.get("revision", "main"))
    return records
