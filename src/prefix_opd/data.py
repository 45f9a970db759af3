"""The sampling rule for training data, the same for both worlds (docs/design.md section 7).

Input rows have OpenThoughts3's shape: `conversations[0]` the human question, `[1]` the off-policy
(QwQ-32B) answer starting with `<think>`, and a `domain`. Questions repeat in the dataset (up to 16
answers each): OPD draws *distinct* questions, SeqKD draws question-answer pairs, each uniformly from all
usable rows of the source. The hub dataset's parquet shards are downloaded once; two passes over them keep
memory flat: the first keeps one index and one question hash per usable row, the second writes the chosen
records as they pass, so neither the 28 GB dataset nor the ~220k chosen records are ever held.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import logging
import os
import random
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
THINK, END_THINK = "<think>", "</think>"


def jsonl_line(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True) + "\n"


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for row in rows:
            f.write(jsonl_line(row))


def write_csv(path: str | Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    """Rows as CSV (columns: given, or every key in first-seen order), written under a temporary name and
    renamed into place (never half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def question_key(text: str) -> str:
    return hashlib.sha1(" ".join(text.split()).encode()).hexdigest()


def usable(row: dict[str, Any], domains: list[str]) -> bool:
    """In a chosen domain, with a question and an answer that closes its thinking."""
    conv = row.get("conversations") or []
    return (row.get("domain", "math") in domains and len(conv) >= 2
            and END_THINK in conv[1].get("value", ""))


def to_record(row: dict[str, Any], index: int) -> dict[str, Any]:
    """Prompt = the human turn; response = the answer without its leading `<think>` (the prompt has it)."""
    question, answer = row["conversations"][0]["value"], row["conversations"][1]["value"]
    response = answer.lstrip()
    response = response[len(THINK):] if response.startswith(THINK) else response
    return {"id": row.get("id", f"row-{index:08d}"), "prompt": question, "response": response,
            "domain": row.get("domain", "math")}


def select_indices(rows: Iterable[dict[str, Any]], domains: list[str], n_questions: int, n_pairs: int,
                   seed: int) -> tuple[list[int], list[int]]:
    """Pass 1: row indices of `n_questions` distinct questions and of `n_pairs` question-answer pairs."""
    first_of_question: dict[str, int] = {}
    pairs: list[int] = []
    for i, row in enumerate(rows):
        if not usable(row, domains):
            continue
        pairs.append(i)
        first_of_question.setdefault(question_key(row["conversations"][0]["value"]), i)
    questions = sorted(first_of_question.values())
    if len(questions) < n_questions or len(pairs) < n_pairs:
        raise ValueError(f"data: asked for {n_questions} questions and {n_pairs} pairs but the source has "
                         f"{len(questions)} distinct usable questions and {len(pairs)} pairs; lower "
                         "data.opd_questions / data.seqkd_examples or widen data.domains")
    rng = random.Random(seed)
    return sorted(rng.sample(questions, n_questions)), sorted(rng.sample(pairs, n_pairs))


def write_selected(rows: Iterable[dict[str, Any]], selections: dict[str, list[int]]) -> None:
    """Pass 2: each selection's records (sorted row indices) written to its JSONL file as the stream passes
    them, so that no more than one row is held at a time."""
    wanted = {path: set(indices) for path, indices in selections.items()}
    for path in wanted:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    files = {path: open(path, "w") for path in wanted}  # noqa: SIM115 - closed below
    try:
        for i, row in enumerate(rows):
            targets = [path for path, indices in wanted.items() if i in indices]
            if targets:
                line = jsonl_line(to_record(row, i))
                for path in targets:
                    files[path].write(line)
    finally:
        for f in files.values():
            f.close()


def _parquet_rows(files: list[str]) -> Callable[[], Iterator[dict[str, Any]]]:
    import pyarrow.parquet as pq

    def rows() -> Iterator[dict[str, Any]]:
        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=1024):
                yield from batch.to_pylist()

    return rows


def hub_parquet_files(dataset_id: str, revision: str) -> list[str]:
    """The dataset's parquet shards, downloaded once into the Hugging Face hub cache (`HF_HOME`; offline with
    `HF_HUB_OFFLINE=1`, the cache only), in name order."""
    from huggingface_hub import snapshot_download

    from .benchmarks import BenchmarkSourceError, explain_load_error
    from .hub import log_commit

    try:
        folder = snapshot_download(dataset_id, repo_type="dataset", revision=revision, allow_patterns=["*.parquet"])
    except Exception as err:  # noqa: BLE001 - the hub's errors name neither the dataset nor the fix
        message = explain_load_error(err, dataset_id, None, revision) or f"{type(err).__name__}: {err}"
        raise BenchmarkSourceError(f"data.dataset {dataset_id}@{revision}: {message}".replace("\n", " ")) from None
    files = sorted(str(p) for p in Path(folder).rglob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"data.dataset {dataset_id}@{revision}: no parquet files in {folder}")
    log_commit("data.revision", dataset_id, revision, Path(folder).name)  # snapshots are named by commit
    return files


def openthoughts_rows(data: dict[str, Any]) -> Callable[[], Iterator[dict[str, Any]]]:
    """A re-iterable stream of OpenThoughts3 rows from parquet shards: local files (`data.local_parquet`), or the
    hub dataset's, downloaded once (the network is read once; both passes of the sampling rule read the local
    shards a batch at a time)."""
    if data.get("local_parquet"):
        files = sorted(glob.glob(data["local_parquet"]))
        if not files:
            raise FileNotFoundError(f"data.local_parquet: no files match '{data['local_parquet']}'")
        return _parquet_rows(files)
    return _parquet_rows(hub_parquet_files(data["dataset"], data["revision"]))


def sample_training_data(data: dict[str, Any], pool_path: str | None, questions_out: str, seqkd_out: str,
                         seed: int) -> None:
    """Write the OPD questions and the SeqKD examples as {id, prompt, response, domain} JSONL."""
    if data["source"] == "toy":
        pool = read_jsonl(pool_path)

        def stream() -> Iterator[dict[str, Any]]:
            return iter(pool)
    else:
        stream = openthoughts_rows(data)
    domains = data.get("domains", ["math"])
    q_idx, p_idx = select_indices(stream(), domains, data["opd_questions"], data["seqkd_examples"], seed)
    write_selected(stream(), {questions_out: q_idx, seqkd_out: p_idx})
    log.info("sampled %d OPD questions and %d SeqKD pairs", len(q_idx), len(p_idx))
