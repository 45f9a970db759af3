"""Hugging Face hub models as local folders: each hub id in `models` is downloaded once, by the workflow's
`download_model` rule, into `results/models/hub/<owner>--<name>`, and every consumer (training, evaluation, the
probe, the case study) reads that folder. `models.revisions` pins each id's revision (a commit sha for an
exact reproduction; default `main`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from .checkpointing import link_or_copy

log = logging.getLogger(__name__)
HUB_DIR = "results/models/hub"
REVISION_FILE = "hub_revision.json"  # in each downloaded folder: {repo_id, revision, commit}
WEIGHTS_AND_TOKENIZER = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken"]


def is_local(path: str) -> bool:
    return path.startswith("results/") or Path(path).expanduser().is_dir()


def local_dir(repo_id: str) -> str:
    """`Qwen/Qwen3-8B` -> `results/models/hub/Qwen--Qwen3-8B` (the rule's output)."""
    return f"{HUB_DIR}/{repo_id.replace('/', '--')}"


def repo_id_of(folder_name: str) -> str:
    return folder_name.replace("--", "/", 1)


def localize(config: dict[str, Any]) -> dict[str, str]:
    """Replace every hub id in config `models` by its local folder (in place); returns {hub id: revision} of
    what the workflow must download. Validation has already refused paths that are neither folders nor ids."""
    revisions = config["models"].get("revisions", {}) or {}
    wanted: dict[str, str] = {}

    def swap(path: str) -> str:
        if is_local(path):
            return path
        wanted[path] = str(revisions.get(path, "main"))
        return local_dir(path)

    config["models"]["teacher"] = swap(config["models"]["teacher"])
    config["models"]["students"] = {k: swap(v) for k, v in config["models"]["students"].items()}
    return wanted


def download(repo_id: str, revision: str, out_dir: str | Path) -> Path:
    """Fetch `repo_id` at `revision` (weights, config, tokenizer) into the hub cache, then lay its files out in
    `out_dir` (hard links into the cache where the file system allows). Offline (HF_HUB_OFFLINE=1) it reads
    the cache only."""
    from huggingface_hub import snapshot_download

    try:
        snapshot = Path(snapshot_download(repo_id, revision=revision, allow_patterns=WEIGHTS_AND_TOKENIZER))
    except Exception as err:  # noqa: BLE001 - the hub's errors name neither the repository nor the revision
        raise RuntimeError(f"{repo_id}@{revision}: {type(err).__name__}: {err}".replace("\n", " ")) from None
    out = Path(out_dir)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    # the cache's files are symlinks to its blobs: link (or copy) the blobs themselves
    shutil.copytree(snapshot, tmp, copy_function=lambda src, dst: link_or_copy(os.path.realpath(src), dst))
    if not (tmp / "config.json").exists():
        raise FileNotFoundError(f"{repo_id}@{revision}: no config.json in {snapshot}; is it a model repository?")
    commit = snapshot.name  # the hub cache names each snapshot by the commit its revision resolved to
    (tmp / REVISION_FILE).write_text(json.dumps({"repo_id": repo_id, "revision": revision, "commit": commit}) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    log_commit(f"models.revisions['{repo_id}']", repo_id, revision, commit)
    return out


def log_commit(key: str, repo_id: str, revision: str, commit: str) -> None:
    """Say which commit a revision resolved to, as the config line that pins it (a rerun then reads the same)."""
    pinned = revision == commit
    log.info("%s@%s is commit %s%s", repo_id, revision, commit, "" if pinned else f"; pin it with {key}: {commit}")
