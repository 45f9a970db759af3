"""GPU ids for concurrent jobs on one machine (Snakemake's `--resources gpu=N` only counts).

A job asking for n GPUs takes n free ids under an exclusive file lock and holds one lock file per
id for its lifetime; a crashed job's locks vanish with its process (flock), so its GPUs are free
again. The ids are those the user made visible (`CUDA_VISIBLE_DEVICES=4,5,6,7 snakemake ...` hands
out 4-7), else all of the machine's. Lock files live in a per-user folder. Under Slurm
(`SLURM_JOB_ID` and `CUDA_VISIBLE_DEVICES` set by the scheduler) the scheduler's assignment is used as is.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_DIR = Path(os.environ.get("PREFIX_OPD_GPU_LOCKS",
                              Path(tempfile.gettempdir()) / f"prefix_opd_gpu_locks-{os.getuid()}"))


def device_count() -> int:
    """GPUs on this machine; PREFIX_OPD_GPU_COUNT overrides (tests on CPU machines use it)."""
    if "PREFIX_OPD_GPU_COUNT" in os.environ:
        return int(os.environ["PREFIX_OPD_GPU_COUNT"])
    import torch

    return torch.cuda.device_count()


def visible_gpus() -> list[str]:
    """The GPU ids jobs may take: the user's CUDA_VISIBLE_DEVICES when set, else every GPU of the machine."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if env:
        return [g.strip() for g in env.split(",") if g.strip()]
    return [str(i) for i in range(device_count())]


@contextmanager
def acquire(n: int, lock_dir: Path = LOCK_DIR) -> Iterator[list[str]]:
    """Hold `n` distinct GPU ids (of `visible_gpus`) until the block exits; raises if fewer than n exist."""
    ids = visible_gpus()
    total = len(ids)
    if n > total:
        raise RuntimeError(f"resources.gpu = {n} but this machine has {total} GPUs visible "
                           f"({','.join(ids) or 'none'}); lower training.gpus")
    lock_dir.mkdir(parents=True, exist_ok=True)
    held: list[tuple[int, int]] = []
    with open(lock_dir / "allocator.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # one job picks ids at a time
        try:
            import time

            while len(held) < n:
                for gpu in ids:
                    if len(held) == n or any(g == gpu for g, _ in held):
                        continue
                    fd = os.open(lock_dir / f"gpu{gpu}.lock", os.O_CREAT | os.O_RDWR)
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        held.append((gpu, fd))
                    except BlockingIOError:
                        os.close(fd)
                if len(held) < n:
                    time.sleep(0.5)
        finally:
            fcntl.flock(guard, fcntl.LOCK_UN)
    try:
        yield sorted((g for g, _ in held), key=ids.index)
    finally:
        for _, fd in held:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


@contextmanager
def gpu_lease(n: int) -> Iterator[str]:
    """Set CUDA_VISIBLE_DEVICES for a job needing `n` GPUs and yield the torch device to use."""
    if n <= 0:
        yield "cpu"
        return
    if os.environ.get("SLURM_JOB_ID") and os.environ.get("CUDA_VISIBLE_DEVICES"):
        yield "cuda"  # Slurm assigned the GPUs already
        return
    with acquire(n) as ids:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, ids))
        yield "cuda"
