"""Hub models through the workflow's download rule: ids become local folders for every consumer, and the
download lays a cached snapshot out as a loadable model folder (offline, from a hub cache in the real layout)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from engine_fixtures import merged_config, save_tiny_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from prefix_opd import hub

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_localize_maps_hub_ids_to_the_rule_outputs():
    config = copy.deepcopy(merged_config(ci=False))
    config["models"] = {"teacher": "Qwen/Qwen3-8B", "students": {"small": "Qwen/Qwen3-1.7B-Base",
                                                                 "large": "results/models/student_large"},
                        "revisions": {"Qwen/Qwen3-8B": SHA}}
    wanted = hub.localize(config)
    assert wanted == {"Qwen/Qwen3-8B": SHA, "Qwen/Qwen3-1.7B-Base": "main"}
    assert config["models"]["teacher"] == "results/models/hub/Qwen--Qwen3-8B"
    assert config["models"]["students"] == {"small": "results/models/hub/Qwen--Qwen3-1.7B-Base",
                                            "large": "results/models/student_large"}
    assert hub.repo_id_of("Qwen--Qwen3-1.7B-Base") == "Qwen/Qwen3-1.7B-Base"


def _fake_cache(root: Path, repo_id: str) -> Path:
    """The hub cache layout huggingface_hub reads offline: blobs behind snapshot symlinks, refs/main -> sha."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / SHA
    save_tiny_model(snapshot, 5)
    blobs = repo / "blobs"
    blobs.mkdir(parents=True)
    for i, f in enumerate(sorted(p for p in snapshot.iterdir())):
        blob = blobs / f"blob{i}"
        f.rename(blob)
        f.symlink_to(Path("..") / ".." / "blobs" / blob.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SHA)
    return root


def _offline(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    """HF_HUB_CACHE=cache HF_HUB_OFFLINE=1 for this process (huggingface_hub reads them once, at import)."""
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


@pytest.mark.parametrize("revision", ["main", SHA])
def test_download_lays_out_a_loadable_model_offline(tmp_path, monkeypatch, revision):
    _offline(monkeypatch, _fake_cache(tmp_path / "cache", "org/tiny"))
    out = hub.download("org/tiny", revision, tmp_path / "results" / "models" / "hub" / "org--tiny")
    assert not any(p.is_symlink() for p in out.iterdir())  # real files (hard links into the cache's blobs)
    AutoModelForCausalLM.from_pretrained(out)
    AutoTokenizer.from_pretrained(out)


def test_download_of_an_unknown_revision_fails_naming_it(tmp_path, monkeypatch):
    _offline(monkeypatch, _fake_cache(tmp_path / "cache", "org/tiny"))
    with pytest.raises(RuntimeError, match="^org/tiny@v9: "):
        hub.download("org/tiny", "v9", tmp_path / "out")
    assert not (tmp_path / "out").exists()
