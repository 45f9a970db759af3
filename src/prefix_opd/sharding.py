"""One native run over several processes (one per GPU): FSDP2 for the student, data parallel over the batch.

`launch(n, args)` starts `torchrun --nproc_per_node=n -m prefix_opd.train args`. Each rank then holds 1/n of
the student's float32 weights, gradients and AdamW state (`fully_shard` on each decoder layer; the embeddings,
final norm and output layer in the root unit), a full copy of the frozen teacher, the step's whole batch of
rollouts, and trains on its share of the step's micro-batches. FSDP averages the gradients over the ranks.
A run without torchrun is the same code with a group of one. Memory per GPU for the paper's 8B student on 8
GPUs: 16 bytes x 8.2e9 / 8 = 16 GB of weights, gradients and AdamW state, beside the 16 GB bf16 teacher.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
import torch.distributed.checkpoint.state_dict as dcp
from torch import Tensor

from .models import hidden_at, output_weight

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Group:
    """This process's place among the run's ranks; rank 0 writes every file."""

    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def writer(self) -> bool:
        return self.rank == 0

    @property
    def sharded(self) -> bool:
        return self.world > 1


def join(device: str) -> Group:
    """The process group torchrun started (WORLD_SIZE > 1; NCCL on GPUs, gloo on CPUs), or a group of one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Group(device=device)
    rank, local = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    if device.startswith("cuda"):
        device = f"cuda:{local}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Group(rank, world, device)


def leave(group: Group) -> None:
    """Wait for every rank, then close the process group (nothing for a group of one)."""
    if group.sharded:
        dist.barrier()
        dist.destroy_process_group()


def launch(processes: int, args: list[str], log_path: str | None = None) -> None:
    """Run `python -m prefix_opd.train args` as `processes` ranks on this node and wait for them; their output
    goes to `log_path` (appended), else to this process's stdout and stderr."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
           "-m", "prefix_opd.train", *args]
    log.info("training on %d processes: %s", processes, " ".join(cmd))
    with open(log_path, "a") if log_path else contextlib.nullcontext() as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT if out else None, check=False)
    if done.returncode:
        raise RuntimeError(f"torchrun exited with {done.returncode}; each rank's traceback is in "
                           f"{log_path or 'the output above'}")


class StudentCall(torch.nn.Module):
    """`head(hidden_BTH, output_weight)` on the student's final hidden states at the response positions, as one
    forward of the FSDP root: inside it the root's weights (embeddings, norm, output layer) are gathered, and
    their gradients are reduced after the backward pass, although the loss reads the output layer's weight
    directly (chunked over the vocabulary) instead of calling it."""

    def __init__(self, lm: torch.nn.Module) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, input_ids_BL: Tensor, gather_BT: Tensor, head: Callable[[Tensor, Tensor], T]) -> T:
        return head(hidden_at(self.lm, input_ids_BL, gather_BT), output_weight(self.lm))


def shard(lm: torch.nn.Module, group: Group) -> StudentCall:
    """The student, sharded over the group's ranks (unchanged for a group of one), behind `StudentCall`."""
    call = StudentCall(lm)
    if not group.sharded:
        return call
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(torch.device(group.device).type, (group.world,))
    for layer in lm.model.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(call, mesh=mesh)
    with torch.no_grad():  # the first forward through the root sets FSDP up (generation bypasses the root)
        one = torch.zeros((1, 1), dtype=torch.long, device=group.device)
        call(one, one, lambda hidden, weight: None)
    _reshard(call)  # the root keeps its weights gathered after a forward: the optimiser must see the shards
    return call


def _fsdp_units(module: torch.nn.Module) -> list[torch.nn.Module]:
    from torch.distributed.fsdp import FSDPModule

    return [m for m in module.modules() if isinstance(m, FSDPModule)]


def _reshard(module: torch.nn.Module) -> None:
    """Every FSDP unit back to its shards (a forward without a backward leaves the root's weights gathered)."""
    for unit in _fsdp_units(module):
        unit.reshard()


@contextmanager
def gathered(call: torch.nn.Module, group: Group) -> Iterator[None]:
    """The student's full weights on every rank for the block: sampling runs `generate` on the bare model,
    whose forward passes then need no collective, so ranks generate independently (different lengths)."""
    units = _fsdp_units(call) if group.sharded else []
    for unit in units:
        unit.set_reshard_after_forward(False, recurse=False)
        unit.unshard()
    try:
        yield
    finally:
        for unit in units:
            unit.reshard()
            unit.set_reshard_after_forward(True, recurse=False)


def share(items: list[T], group: Group) -> list[tuple[T, bool]]:
    """This rank's share of `items` (every world-th, from its rank), padded so that every rank gets the same
    count: a padding entry repeats the first item, flagged False (its forward and backward run, so FSDP's
    collectives stay in step, and its loss is weighted 0)."""
    per_rank = -(-len(items) // group.world)
    mine = [(item, True) for item in items[group.rank::group.world]]
    return mine + [(items[0], False)] * (per_rank - len(mine))


def all_sum(values: list[float], group: Group) -> list[float]:
    """Element-wise sums over the ranks (the values themselves for a group of one)."""
    if not group.sharded:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=group.device)  # NCCL reduces GPU tensors only
    dist.all_reduce(t)
    return t.tolist()


def all_gather(obj: Any, group: Group) -> list[Any]:
    """Every rank's `obj`, in rank order (picklable objects; tensors should be on the CPU)."""
    if not group.sharded:
        return [obj]
    out: list[Any] = [None] * group.world
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj: T, group: Group) -> T:
    """Rank 0's `obj` on every rank."""
    if not group.sharded:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def full_state(call: StudentCall, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """The student's and AdamW's full state on the CPU, keyed by parameter name (on rank 0; empty elsewhere):
    one format whatever the number of ranks, so a run resumes on a different number of GPUs."""
    _reshard(call)
    options = dcp.StateDictOptions(full_state_dict=True, cpu_offload=True)
    return (dcp.get_model_state_dict(call.lm, options=options),
            dcp.get_optimizer_state_dict(call.lm, optimizer, options=options))


def load_full_state(call: StudentCall, optimizer: torch.optim.Optimizer, model_state: dict, optim_state: dict,
                    group: Group) -> None:
    """Load `full_state`'s output (held by rank 0 only, when sharded: the others pass empty dicts)."""
    _reshard(call)
    options = dcp.StateDictOptions(full_state_dict=True, broadcast_from_rank0=group.sharded)
    dcp.set_model_state_dict(call.lm, model_state, options=options)
    dcp.set_optimizer_state_dict(call.lm, optimizer, optim_state, options=options)
