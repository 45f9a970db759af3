"""Launching a verl run: its input files, its command line, and scripts for one box or a Slurm allocation.

* :func:`prepare` writes what verl reads: `train.parquet` / `val.parquet` (`verl_data`), the agent-loop
  registry `agent_loops.yaml` (`verl_schedule`), and names the logs verl writes (`verl_metrics.jsonl`
  through verl's file logger, `lengths.jsonl` through the agent loop).
* :func:`command` is `python -m verl.trainer.main_ppo <overrides>` (`verl_overrides.build_overrides`).
* :func:`local_script`: one machine; `main_ppo` calls `ray.init()` and starts a local Ray cluster itself.
* :func:`slurm_script`: verl's Ray-on-Slurm pattern (verl `examples/slurm/ray_on_slurm.slurm`): inside an
  allocation of N nodes, `ray start --head` on the first node, `ray start --address` on the others (each
  through `srun -w <node>`), wait until all N nodes joined, then run verl on the head node with
  `RAY_ADDRESS` set so `ray.init()` joins that cluster. Submit it with `sbatch` (the `#SBATCH` lines set
  the node and GPU counts) or run it inside `salloc`.

Environment variables go to every Ray worker twice over: exported before `ray start` (workers inherit the
raylet's environment) and as `ray_kwargs.ray_init.runtime_env.env_vars.PYTHONPATH` (the overrides).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from . import verl_data
from .verl_overrides import SRC_DIR, build_overrides
from .verl_schedule import write_agent_loop_config


def prepare(settings: dict[str, Any], questions_jsonl: str | Path, out_dir: str | Path,
            tokenizer: Any | None = None) -> dict[str, Any]:
    """Write verl's inputs for one run into `out_dir`; returns their paths and `max_prompt_length`.

    With a tokenizer (the student's), `max_prompt_length` is the longest rendered prompt; else 1024.
    """
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    train, val = verl_data.convert(questions_jsonl, settings, out)
    lengths = out / "lengths.jsonl"
    agent_loops = write_agent_loop_config(settings, out / "agent_loops.yaml", lengths_log=str(lengths))
    max_prompt = 1024
    if tokenizer is not None:
        max_prompt = verl_data.max_prompt_tokens(tokenizer, verl_data.read_parquet(train))
    return {"train": str(train), "val": str(val), "agent_loops": str(agent_loops), "lengths": str(lengths),
            "metrics": str(out / "verl_metrics.jsonl"), "out_dir": str(out), "max_prompt_length": max_prompt}


def command(settings: dict[str, Any], prepared: dict[str, Any], n_gpus_per_node: int, nnodes: int = 1,
            python: str = "python", **kw: Any) -> list[str]:
    """argv of the verl trainer for one run (`kw` goes to `build_overrides`, e.g. teacher_gpus_per_node)."""
    overrides = build_overrides(settings, prepared["train"], prepared["val"], prepared["out_dir"], n_gpus_per_node,
                                nnodes, max_prompt_length=prepared["max_prompt_length"],
                                agent_loop_config=prepared["agent_loops"], **kw)
    return [python, "-m", "verl.trainer.main_ppo", *overrides]


def environment(prepared: dict[str, Any], src_dir: str | Path | None = None) -> dict[str, str]:
    """Variables verl's processes need: this package on PYTHONPATH, and where the file logger writes."""
    return {"PYTHONPATH": str(src_dir or SRC_DIR), "VERL_FILE_LOGGER_PATH": prepared["metrics"],
            "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}


def _exports(env: dict[str, str]) -> str:
    lines = []
    for k, v in env.items():
        if k == "PYTHONPATH":
            lines.append(f'export PYTHONPATH={shlex.quote(v)}"${{PYTHONPATH:+:$PYTHONPATH}}"')
        else:
            lines.append(f"export {k}={shlex.quote(v)}")
    return "\n".join(lines)


def local_script(argv: list[str], env: dict[str, str]) -> str:
    """Bash script for one machine: verl's `ray.init()` starts a local Ray cluster with its GPUs."""
    return "\n".join(["#!/usr/bin/env bash", "set -euo pipefail", _exports(env), "exec " + shlex.join(argv), ""])


def slurm_script(argv: list[str], env: dict[str, str], nnodes: int, gpus_per_node: int,
                 ray: str = "ray", python: str = "python", port: int = 6379, job_name: str = "prefix-opd-verl",
                 sbatch_extra: list[str] | None = None, join_timeout_s: int = 600) -> str:
    """Bash script that starts Ray across a Slurm allocation of `nnodes` nodes and runs `argv` on the head."""
    sbatch = [f"#SBATCH --job-name={job_name}", f"#SBATCH --nodes={nnodes}", "#SBATCH --ntasks-per-node=1",
              f"#SBATCH --gpus-per-node={gpus_per_node}", "#SBATCH --exclusive"]
    sbatch += [f"#SBATCH {x}" for x in sbatch_extra or []]
    q = shlex.quote
    return f"""#!/usr/bin/env bash
{chr(10).join(sbatch)}
# Ray on Slurm (verl's pattern): head on the first node, workers on the others, verl on the head. Every step
# overlaps the others (the Slurm executor runs this script inside a step of its own); Ray stops on exit.
set -euo pipefail
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
{_exports(env)}
NNODES={nnodes}
GPUS_PER_NODE={gpus_per_node}
CPUS=${{SLURM_CPUS_ON_NODE:-$(nproc)}}
mapfile -t NODES < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
if [ "${{#NODES[@]}}" -lt "$NNODES" ]; then
  echo "allocation has ${{#NODES[@]}} node(s), this run needs $NNODES" >&2; exit 1
fi
HEAD=${{NODES[0]}}
HEAD_IP=$(srun --overlap --nodes=1 --ntasks=1 -w "$HEAD" hostname --ip-address | awk '{{print $1}}')
export RAY_ADDRESS="$HEAD_IP:{port}"
echo "Ray head $HEAD at $RAY_ADDRESS"
srun --overlap --nodes=1 --ntasks=1 -w "$HEAD" {q(ray)} start --head --node-ip-address="$HEAD_IP" --port={port} \\
  --num-cpus "$CPUS" --num-gpus "$GPUS_PER_NODE" --block &
sleep 10
for ((i = 1; i < NNODES; i++)); do
  srun --overlap --nodes=1 --ntasks=1 -w "${{NODES[$i]}}" {q(ray)} start --address "$RAY_ADDRESS" \\
    --num-cpus "$CPUS" --num-gpus "$GPUS_PER_NODE" --block &
  sleep 5
done
{q(python)} - <<'PY'
import os, time, ray
ray.init(address=os.environ["RAY_ADDRESS"])
deadline = time.time() + {join_timeout_s}
while len([n for n in ray.nodes() if n["Alive"]]) < {nnodes}:
    if time.time() > deadline:
        raise SystemExit("not all {nnodes} Ray nodes joined in {join_timeout_s} s")
    time.sleep(2)
print("Ray nodes alive:", len([n for n in ray.nodes() if n["Alive"]]))
PY
srun --overlap --nodes=1 --ntasks=1 -w "$HEAD" --export=ALL {shlex.join(argv)}
"""
