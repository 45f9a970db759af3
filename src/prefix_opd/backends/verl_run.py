"""One run through verl 0.9.1, with the native engine's outputs (`training.backend: verl`).

:func:`train_with_verl` = prepare -> launch -> publish:

* **prepare** (`verl_launch.prepare`, the student's tokenizer): `train.parquet`, `val.parquet`,
  `agent_loops.yaml` in the run's work folder, which is also verl's output folder;
* **launch**: the verl interpreter (:func:`verl_python`) runs `python -m verl.trainer.main_ppo <overrides>`
  through a bash script written into the work folder (`verl_local.sh`, or `verl_slurm.sh` for
  `nnodes > 1` inside a Slurm allocation: Ray on Slurm, `verl_launch.slurm_script`), with the work folder as
  its working directory (Hydra's `outputs/` lands there) and its output appended to `<work>/verl.log`;
* **publish** (:func:`publish`): into the declared outputs, as `prefix_opd.train` publishes them:
  `checkpoints/step_N/` (HF format, from verl's `global_step_N/actor/huggingface`), `metrics.csv`
  (`checkpointing.METRIC_COLUMNS`, via `verl_data.metrics_from_verl`) and `kl_by_position.csv`.

`kl_by_position.csv` is written with its header only: verl logs no per-position KL (neither the training
batch's KL binned by response position nor the Fig. 5 diagnostic rollouts beyond the prefix); those
come from the native engine only.

Resume: `verl_overrides` pins `trainer.resume_mode=auto` and `trainer.default_local_dir=<work>/checkpoints`,
so a relaunch continues from verl's latest `global_step_N` (model, optimiser, dataloader position). Two
things verl does not keep across a relaunch are kept here: its file logger opens `verl_metrics.jsonl` with
mode "wb" (a relaunch would erase the earlier steps' metrics), so each launch first moves the previous log
to the end of `verl_metrics.earlier.jsonl` (read first; a re-run step's later record wins); and a work
folder written under other settings is wiped first (as the native engine does), so verl never resumes a
different run's checkpoints.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from .. import engines, flops
from ..checkpointing import KL_COLUMNS, METRIC_COLUMNS, claim_work_dir, link_or_copy, run_identity, to_bf16
from ..data import write_csv
from . import verl_data, verl_launch

log = logging.getLogger(__name__)


# Names inside the work folder: those `verl_launch.prepare` and `verl_overrides` give verl's files.
CHECKPOINTS = "checkpoints"  # trainer.default_local_dir
METRICS_LOG = "verl_metrics.jsonl"  # VERL_FILE_LOGGER_PATH
EARLIER_METRICS = "verl_metrics.earlier.jsonl"  # previous launches' logs, oldest first
LENGTHS_LOG = "lengths.jsonl"  # the agent loop's per-rollout lengths
VERL_LOG = "verl.log"

_STEP_DIR = re.compile(r"^global_step_(\d+)$")
_TOKENIZER_FILE = "tokenizer_config.json"
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


def verl_python() -> str:
    """The interpreter that has verl (`engines.python_for`); raises a one-line RuntimeError when none has."""
    return engines.require_python("verl", "training.backend: verl")


def _keep_earlier_metrics(work: Path) -> None:
    """verl's file logger truncates its file on start: move the previous launch's lines aside first."""
    current = work / METRICS_LOG
    if current.exists() and current.stat().st_size:
        with open(current) as src, open(work / EARLIER_METRICS, "a") as dst:
            text = src.read()
            dst.write(text if text.endswith("\n") else text + "\n")
    current.unlink(missing_ok=True)


def launch_script(settings: dict[str, Any], prepared: dict[str, Any], work: Path, gpus_per_node: int,
                  nnodes: int, python: str) -> Path:
    """Write the bash script that runs verl for this run into `work`: one machine (verl's `ray.init()` starts a
    local Ray cluster) or, for `nnodes > 1`, Ray across the current Slurm allocation."""
    argv = verl_launch.command(settings, prepared, gpus_per_node, nnodes, python=python)
    env = verl_launch.environment(prepared)
    if nnodes > 1:
        if not os.environ.get("SLURM_JOB_NODELIST"):
            raise RuntimeError(f"training.nodes = {nnodes}: a multi-node verl run starts Ray across a Slurm "
                               "allocation, but SLURM_JOB_NODELIST is unset (run the workflow with the Slurm "
                               "profile, or inside salloc/sbatch)")
        ray = Path(python).with_name("ray")
        text = verl_launch.slurm_script(argv, env, nnodes, gpus_per_node, ray=str(ray) if ray.exists() else "ray",
                                        python=python, job_name=f"verl-{settings['name']}")
        path = work / "verl_slurm.sh"
    else:
        text = verl_launch.local_script(argv, env)
        path = work / "verl_local.sh"
    path.write_text(text)
    path.chmod(0o755)
    return path


def _run_script(script: Path, log_path: Path, cwd: Path) -> int:
    """Run verl's script; meanwhile (every PRUNE_EVERY_S) and after, drop the resume state of every save but the
    newest (`prune_resume_state`)."""
    with open(log_path, "a") as out:
        out.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} bash {script}\n")
        out.flush()
        proc = subprocess.Popen(["bash", str(script)], cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        while True:
            try:
                rc = proc.wait(timeout=PRUNE_EVERY_S)
                break
            except subprocess.TimeoutExpired:
                prune_resume_state(cwd / CHECKPOINTS)
    prune_resume_state(cwd / CHECKPOINTS)
    return rc


PRUNE_EVERY_S = 30.0
TRACKER = "latest_checkpointed_iteration.txt"  # verl writes it once a save is complete


def prune_resume_state(ckpt_root: Path) -> list[Path]:
    """Keep verl's full state (FSDP model and optimiser shards, extra state) only in the newest complete save:
    older `global_step_N/actor/` keep just `huggingface/` (the weights the evaluation reads), and every complete
    save's export is bf16 (`to_bf16`). verl resumes from the tracker's step only, so nothing it reads is removed;
    at 8B this saves ~98 GB of resume state per older save. Returns what it removed."""
    tracker = ckpt_root / TRACKER
    try:
        newest = int(tracker.read_text().strip())
    except (OSError, ValueError):
        return []
    removed = []
    for step, hf in _checkpoint_steps(ckpt_root).items():
        if step > newest:
            continue
        to_bf16(hf)
        if step == newest:
            continue
        for item in hf.parent.iterdir():  # global_step_N/actor/*
            if item.name != "huggingface":
                shutil.rmtree(item) if item.is_dir() else item.unlink()
                removed.append(item)
    return removed


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def train_with_verl(settings: dict[str, Any], questions_path: str | Path, work_dir: str | Path,
                    out_dir: str | Path, gpus_per_node: int, nnodes: int = 1) -> None:
    """Run (or resume) one OPD run with verl and publish checkpoints and metrics into `out_dir`."""
    from ..models import load_tokenizer

    python = verl_python()
    inputs = [settings["student_path"], settings["teacher_path"], str(questions_path)]
    work = claim_work_dir(work_dir, run_identity(settings, inputs), settings["name"])
    done = _checkpoint_steps(work / CHECKPOINTS)
    if int(settings["steps"]) in done:  # finished earlier (e.g. only the publishing was lost): publish again
        log.info("%s: verl already saved the last step (%d); publishing", settings["name"], settings["steps"])
        publish(settings, work, out_dir)
        return
    prepared = verl_launch.prepare(settings, questions_path, work, tokenizer=load_tokenizer(settings["student_path"]))
    assert Path(prepared["metrics"]) == work / METRICS_LOG and Path(prepared["lengths"]) == work / LENGTHS_LOG
    script = launch_script(settings, prepared, work, int(gpus_per_node), int(nnodes), python)
    _keep_earlier_metrics(work)
    log_path = work / VERL_LOG
    log.info("%s: verl (%s) on %d node(s) x %d GPU(s)%s; log %s", settings["name"], python, nnodes, gpus_per_node,
             f", resuming after step {max(done)}" if done else "", log_path)
    rc = _run_script(script, log_path, work)
    if rc:
        log.error("verl log tail:\n%s", _tail(log_path))
        raise RuntimeError(f"{settings['name']}: verl exited with status {rc}; see {log_path} (a rerun resumes from "
                           f"the last global_step_N under {work / CHECKPOINTS})")
    publish(settings, work, out_dir)


# ---------------------------------------------------------------------------------------------- publish


def _checkpoint_steps(ckpt_root: Path) -> dict[int, Path]:
    """{step: global_step_N/actor/huggingface} of verl's saved checkpoints."""
    out = {}
    if ckpt_root.is_dir():
        for d in ckpt_root.iterdir():
            m = _STEP_DIR.match(d.name)
            if m and (d / "actor" / "huggingface").is_dir():
                out[int(m.group(1))] = d / "actor" / "huggingface"
    return out


def _has_weights(folder: Path) -> bool:
    return any(p.name.endswith(_WEIGHT_SUFFIXES) for p in folder.iterdir())


def _model_shape(path: str) -> flops.ModelShape:
    from transformers import AutoConfig

    return flops.ModelShape.from_hf_config(AutoConfig.from_pretrained(path))


def metric_lines(work: str | Path) -> list[str]:
    """Every launch's file-logger lines, oldest first (for `verl_data.read_verl_log`: the last record wins)."""
    lines: list[str] = []
    for name in (EARLIER_METRICS, METRICS_LOG):
        path = Path(work) / name
        if path.exists():
            lines += path.read_text().splitlines()
    return lines


def publish(settings: dict[str, Any], work_dir: str | Path, out_dir: str | Path) -> None:
    """verl's outputs in `work_dir` -> the native engine's published layout in `out_dir`.

    * `checkpoints/step_N/`: each `global_step_N/actor/huggingface` (hard-linked, else copied), plus the
      student's tokenizer where verl saved none;
    * `metrics.csv`: `verl_data.metrics_from_verl` over every launch's log, with FLOPs from the student's and
      teacher's configs (`flops.opd_step_flops`, as the native engine) and exact lengths when the agent loop
      logged them; steps 1..settings["steps"];
    * `kl_by_position.csv`: the header only (verl logs no position-binned KL).
    """
    work, out = Path(work_dir).resolve(), Path(out_dir)
    steps = _checkpoint_steps(work / CHECKPOINTS)
    steps = {k: v for k, v in steps.items() if k <= int(settings["steps"])}
    if int(settings["steps"]) not in steps:
        raise RuntimeError(f"{settings['name']}: verl finished without a checkpoint of the last step "
                           f"(global_step_{settings['steps']}/actor/huggingface under {work / CHECKPOINTS}); "
                           f"found steps {sorted(steps)}")
    for hf in steps.values():
        if not _has_weights(hf):
            raise RuntimeError(f"{hf} has no weights: verl saves them only with 'hf_model' in "
                               "actor_rollout_ref.actor.checkpoint.save_contents")
    rows = verl_data.metrics_from_verl(metric_lines(work), settings, _model_shape(settings["student_path"]),
                                       _model_shape(settings["teacher_path"]), lengths=work / LENGTHS_LOG)
    rows = [r for r in rows if 1 <= r["step"] <= int(settings["steps"])]
    if not rows:
        raise RuntimeError(f"{settings['name']}: no metrics in {work / METRICS_LOG} (verl's file logger: "
                           "trainer.logger must include 'file')")
    missing = sorted(set(range(1, int(settings["steps"]) + 1)) - {r["step"] for r in rows})
    if missing:
        log.warning("%s: verl logged no metrics for steps %s (cumulative columns sum the logged steps)",
                    settings["name"], missing)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_out = out / "checkpoints"
    shutil.rmtree(ckpt_out, ignore_errors=True)
    ckpt_out.mkdir(parents=True)
    tokenizer_files: Path | None = None
    for step in sorted(steps):
        dest = ckpt_out / f"step_{step}"
        tmp = ckpt_out / f".tmp_step_{step}"
        shutil.copytree(steps[step], tmp, copy_function=link_or_copy)
        if not (tmp / _TOKENIZER_FILE).exists():
            if tokenizer_files is None:  # saved apart and copied in: never write through a hard link
                from ..models import load_tokenizer

                tokenizer_files = ckpt_out / ".tokenizer"
                load_tokenizer(settings["student_path"]).save_pretrained(tokenizer_files)
            for f in tokenizer_files.iterdir():
                if not (tmp / f.name).exists():
                    shutil.copy2(f, tmp / f.name)
        os.replace(tmp, dest)
    if tokenizer_files is not None:
        shutil.rmtree(tokenizer_files)
    write_csv(out / "metrics.csv", rows, METRIC_COLUMNS)
    write_csv(out / "kl_by_position.csv", [], KL_COLUMNS)
    log.info("%s: published verl checkpoints %s and %d metric rows into %s", settings["name"], sorted(steps),
             len(rows), out)
