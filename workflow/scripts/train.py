"""Snakemake adapter: train one run (resumes from its work folder) on the native engine or through verl."""

from pathlib import Path

import yaml

from prefix_opd.backends.verl_overrides import backend_for
from prefix_opd.gpus import gpu_lease
from prefix_opd.logs import to_file
from prefix_opd.runs import RunSpec
from prefix_opd.sharding import launch
from prefix_opd.train import cli_args, train

sm = snakemake  # noqa: F821
to_file(sm.log[0])
settings = yaml.safe_load(open(sm.input.settings))
out_dir = str(Path(sm.output.metrics).parent)  # checkpoints/, metrics.csv, kl_by_position.csv
gpus = int(sm.resources.get("gpu", 0))
if backend_for(settings) == "verl":
    from prefix_opd.backends.verl_run import train_with_verl

    # Hardware is not part of a run's settings (run.yaml): the node count falls back to the config.
    nodes = int(settings["training"].get("nodes") or sm.config.get("training", {}).get("nodes") or 1)
    # One node: lease GPU ids (disjoint CUDA_VISIBLE_DEVICES for concurrent jobs; verl's local Ray sees those).
    # Several nodes: Ray across the Slurm allocation, whose GPUs Slurm assigns.
    with gpu_lease(gpus if nodes == 1 else 0):
        train_with_verl(settings, sm.input.questions, sm.params.work, out_dir, gpus_per_node=gpus, nnodes=nodes)
else:
    # Hardware from the config, not the run's settings: gradient checkpointing, and one process per GPU (FSDP).
    checkpointed = bool(sm.config.get("training", {}).get("gradient_checkpointing"))
    with gpu_lease(gpus) as device:
        if gpus > 1:
            launch(gpus, cli_args(sm.input.settings, sm.input.questions, sm.input.seqkd, sm.params.work, out_dir,
                                  sm.threads // gpus or 1, device, sm.input.get("dev"), checkpointed), sm.log[0])
        else:
            train(RunSpec.from_settings(settings), sm.input.questions, sm.input.seqkd, sm.params.work, out_dir,
                  threads=sm.threads, device=device, dev_path=sm.input.get("dev"),
                  gradient_checkpointing=checkpointed)
