"""A run's work folder: resumable state, atomic checkpoints, metrics, and publishing.

Layout of `results/work/<run>/` (never a declared Snakemake output, so it survives reruns):
    checkpoints/step_<N>/   Hugging Face checkpoints, each renamed into place only once complete
    state.pt                optimiser state + step + settings hash, replaced atomically after a save
    metrics.csv, kl_by_position.csv
A kill at any point leaves either the previous state or the new one, never half of a checkpoint.
Resuming truncates the logs to the saved step, so the remaining steps are logged exactly once.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import torch

from .data import write_csv

log = logging.getLogger(__name__)

METRIC_COLUMNS = ["step", "l_train", "rollouts", "prompt_tokens", "response_tokens", "loss", "kl_mean",
                  "flops", "flops_cum", "flops_with_prompt", "flops_with_prompt_cum", "diag_flops", "signal",
                  "signal_flops", "seconds", "seconds_cum"]
"""`flops` counts each rollout's supervised (response) tokens, as Appendix B does; `flops_with_prompt` counts
prompt + response tokens. Both include `signal_flops`, what an adaptive schedule spent measuring its `signal`
(schedules.py); `diag_flops` (Fig. 5's diagnostic rollouts) is not part of any method's cost."""
# state.pt's layout: full weights and AdamW state keyed by parameter name (sharding.full_state), whatever the number
# of processes that wrote it; a state without this mark is not resumed.
STATE_FORMAT = "full-by-name"
KL_COLUMNS = ["step", "source", "rollout", "bin_start", "bin_end", "kl_mean", "n_tokens"]  # rollout -1: a batch


def input_fingerprint(paths: list[str]) -> list[list[Any]]:
    """(path, size, mtime) of every file under the local inputs: a rebuilt model or data file is a new run,
    even at the same path (hub ids are not local and count by name)."""
    out = []
    for p in map(Path, paths):
        files = sorted(p.rglob("*")) if p.is_dir() else [p] if p.exists() else []
        out += [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files if f.is_file()]
    return out


def run_identity(settings: dict[str, Any], inputs: list[str] = ()) -> str:
    """Identity of a run's resumable state, for every backend: its settings and the exact input files it trains
    from (models, data)."""
    blob = json.dumps([settings, input_fingerprint(list(inputs))], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


SETTINGS_MARK = "settings.sha256"


def claim_work_dir(work_dir: str | Path, identity: str, name: str) -> Path:
    """A work folder another engine (verl) resumes from: kept when it was written under the same
    `run_identity`, wiped otherwise (the mark file holds the identity)."""
    work = Path(work_dir).resolve()
    mark = work / SETTINGS_MARK
    if not (mark.exists() and mark.read_text().strip() == identity):
        if work.exists() and any(work.iterdir()):
            log.info("%s: work folder %s holds another run's state; starting afresh", name, work)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        mark.write_text(identity + "\n")
    return work


def fault_point(phase: str, step: int) -> None:
    """Fault injection for the kill-and-resume tests: PREFIX_OPD_KILL_AT=<phase>:<step> SIGKILLs the
    process when it reaches that point (phases: sampling, update, checkpoint)."""
    target = os.environ.get("PREFIX_OPD_KILL_AT")
    if target and target == f"{phase}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_csv(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with open(path) as f:
        return [{k: _num(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _num(v: str) -> Any:
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


class WorkDir:
    def __init__(self, root: Path, settings_hash: str) -> None:
        self.root, self.hash = root, settings_hash
        self.state_path = root / "state.pt"
        self.metrics_path = root / "metrics.csv"
        self.kl_path = root / "kl_by_position.csv"
        self.ckpt_root = root / "checkpoints"

    def matching_state(self) -> dict[str, Any] | None:
        """The last committed state (step, weights, AdamW) if it belongs to these settings, else None."""
        if not self.state_path.exists():
            return None
        state = torch.load(self.state_path, map_location="cpu", weights_only=False)
        if state["settings_hash"] != self.hash or state.get("format") != STATE_FORMAT:
            return None
        return state

    def prepare(self, step: int) -> None:
        """Resuming at `step`: drop the logs and checkpoints written after it. At 0 (a fresh start, or the
        settings changed): empty the folder, so that nothing of an older run leaks into this one."""
        if step:
            self._truncate_logs(step)
            self._drop_checkpoints_after(step)
            return
        shutil.rmtree(self.root, ignore_errors=True)
        self.ckpt_root.mkdir(parents=True, exist_ok=True)
        write_csv(self.metrics_path, [], METRIC_COLUMNS)
        write_csv(self.kl_path, [], KL_COLUMNS)

    def _truncate_logs(self, step: int) -> None:
        write_csv(self.metrics_path, [r for r in _read_csv(self.metrics_path) if r["step"] <= step], METRIC_COLUMNS)
        write_csv(self.kl_path, [r for r in _read_csv(self.kl_path) if r["step"] <= step], KL_COLUMNS)

    def _drop_checkpoints_after(self, step: int) -> None:
        for d in self.ckpt_root.iterdir():
            if d.name.startswith(".") or int(d.name.removeprefix("step_")) > step:
                shutil.rmtree(d)

    def last_checkpoint(self) -> Path | None:
        steps = [int(d.name.removeprefix("step_")) for d in self.ckpt_root.glob("step_*")]
        return self.ckpt_root / f"step_{max(steps)}" if steps else None

    def metrics(self, upto: int) -> list[dict[str, Any]]:
        return [r for r in _read_csv(self.metrics_path) if r["step"] <= upto]

    def append_metrics(self, row: dict[str, Any]) -> None:
        self._append(self.metrics_path, METRIC_COLUMNS, [row])

    def append_kl(self, step: int, source: str, bins: list[tuple[int, int, int, float, int]]) -> None:
        """Rows (rollout, bin_start, bin_end, kl_mean, n_tokens): one rollout's bins, or rollout -1 for bins
        pooled over a training batch."""
        rows = [{"step": step, "source": source, "rollout": r, "bin_start": a, "bin_end": b, "kl_mean": m,
                 "n_tokens": n} for r, a, b, m, n in bins]
        self._append(self.kl_path, KL_COLUMNS, rows)

    @staticmethod
    def _append(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
        with open(path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=columns).writerows(rows)
            f.flush()
            os.fsync(f.fileno())

    def save(self, step: int, model: Any, tokenizer: Any, model_state: dict[str, Any],
             optim_state: dict[str, Any], bf16: bool = False) -> None:
        """Write checkpoint `step_<step>` (a Hugging Face folder of `model_state`, in bf16 if `bf16`) under a
        temporary name, rename it, then commit the state (`sharding.full_state`'s float32 weights and AdamW
        state, keyed by name)."""
        tmp = self.ckpt_root / f".tmp_step_{step}"
        shutil.rmtree(tmp, ignore_errors=True)
        export = {k: _bf16(v) for k, v in model_state.items()} if bf16 else model_state
        model.save_pretrained(tmp, state_dict=export)
        if bf16:
            _mark_bf16(tmp / "config.json")
        fault_point("checkpoint", step)  # mid-checkpoint-write: the weights are there, the rest is not
        tokenizer.save_pretrained(tmp)
        final = self.ckpt_root / f"step_{step}"
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        state = {"step": step, "settings_hash": self.hash, "format": STATE_FORMAT, "model": model_state,
                 "optimizer": optim_state}
        _atomic_torch_save(state, self.state_path)

    def publish(self, out_dir: Path) -> None:
        """Hard-link (or copy) the finished checkpoints and logs into the declared output folder."""
        ckpt_out = out_dir / "checkpoints"
        shutil.rmtree(ckpt_out, ignore_errors=True)
        ckpt_out.mkdir(parents=True)
        for d in sorted(p for p in self.ckpt_root.iterdir() if p.name.startswith("step_")):
            shutil.copytree(d, ckpt_out / d.name, copy_function=link_or_copy)
        for f in (self.metrics_path, self.kl_path):
            shutil.copyfile(f, out_dir / f.name)


def link_or_copy(src: str, dst: str) -> None:
    """Hard-link a file (publishing costs no copy), or copy it across file systems."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def to_bf16(hf: Path) -> bool:
    """Rewrite a complete Hugging Face export's fp32 safetensors in bf16 (verl gathers the fp32 master weights
    into it: 32 GB at 8B instead of 16); its config says so. Returns whether it rewrote anything."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    changed = False
    for f in sorted(hf.glob("*.safetensors")):
        with safe_open(f, "pt") as st:
            if not any(st.get_slice(k).get_dtype() == "F32" for k in st.keys()):  # noqa: SIM118 - not a dict
                continue
        tmp = f.with_name(f".{f.name}.tmp")
        save_file({k: _bf16(v) for k, v in load_file(f).items()}, tmp, metadata={"format": "pt"})
        os.replace(tmp, f)
        changed = True
    if changed:
        _mark_bf16(hf / "config.json")
    return changed


def _bf16(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.bfloat16) if t.dtype == torch.float32 else t


def _mark_bf16(config: Path) -> None:
    """A Hugging Face config.json that says its weights are bf16."""
    if config.exists():
        data = json.loads(config.read_text())
        data.update({k: "bfloat16" for k in ("torch_dtype", "dtype") if k in data} or {"torch_dtype": "bfloat16"})
        config.write_text(json.dumps(data, indent=2))
