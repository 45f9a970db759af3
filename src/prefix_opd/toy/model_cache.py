"""A content-addressed cache of pretrained toy models, so a second study reuses the first one's models.

A model's key hashes everything its weights depend on: its spec, the pretraining settings, the prompts,
the seed, the tokenizer file, the weights it starts from (`init_from`), the code pretraining runs (the
import closure of `toy/pretrain.py`) and the torch / transformers versions. The cache lives in
``$PREFIX_OPD_MODEL_CACHE`` (default ``~/.cache/prefix_opd/models``); ``PREFIX_OPD_MODEL_CACHE=off`` disables
it. Entries are written aside and renamed into place, so concurrent jobs never see half a model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .. import code_deps

log = logging.getLogger(__name__)


def cache_root() -> Path | None:
    value = os.environ.get("PREFIX_OPD_MODEL_CACHE", str(Path.home() / ".cache" / "prefix_opd" / "models"))
    return None if value.lower() in ("off", "none", "0", "") else Path(value)


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pretraining_code() -> list[Path]:
    """The package files pretraining runs, in a fixed order (this cache's own code excepted: it does not
    touch the weights)."""
    modules = code_deps.closure(frozenset({"prefix_opd.toy.pretrain"})) - {__name__, code_deps.__name__}
    return sorted(p for p in map(code_deps.module_file, modules) if p is not None)


def model_key(settings: dict[str, Any], tokenizer_dir: str, init_from: str | None) -> str:
    import torch
    import transformers

    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    h.update(f"torch {torch.__version__} transformers {transformers.__version__}".encode())
    for path in pretraining_code():
        h.update(_file_digest(path).encode())
    h.update(_file_digest(Path(tokenizer_dir) / "tokenizer.json").encode())
    if init_from:
        h.update(_file_digest(Path(init_from) / "model.safetensors").encode())
    return h.hexdigest()[:24]


def fetch(key: str, out_dir: str) -> bool:
    """Copy the cached model `key` into `out_dir`; False when it is not cached (or the cache is off)."""
    root = cache_root()
    if root is None or not (root / key).is_dir():
        return False
    shutil.copytree(root / key, out_dir, dirs_exist_ok=True)
    log.info("reused the pretrained model %s from %s", key, root)
    return True


def store(key: str, out_dir: str) -> None:
    """Put `out_dir` into the cache as `key` (a no-op when the cache is off or unwritable)."""
    root = cache_root()
    if root is None:
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        aside = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        shutil.copytree(out_dir, aside, dirs_exist_ok=True)
        try:
            aside.rename(root / key)
        except OSError:  # another job stored it first
            shutil.rmtree(aside, ignore_errors=True)
    except OSError as err:
        log.warning("could not store the pretrained model in %s (%s); set PREFIX_OPD_MODEL_CACHE to a writable "
                    "folder or to 'off'", root, err)
