"""GPU ids for concurrent jobs on one machine (Snakemake's `--resources gpu=N` only counts).

A job asking for n GPUs takes n free ids under an exclusive file lock and holds one lock file per
id for its lifetime; a crashed job's locks vanish with its process (flock), so its GPUs are free
again. Under Slurm (`SLURM_JOB_GPUS` / `CUDA_VISIBLE_DEVICES` set by the scheduler) the
scheduler's assignment is used as is.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_DIR = Path(os.environ.get("PREFIX_OPD_GPU_LOCKS", "/tmp/prefix_opd_gpu_locks"))


def device_count() -> int:
    """GPUs on this machine; PREFIX_OPD_GPU_COUNT overrides (tests on CPU machines use it)."""
    if "PREFIX_OPD_GPU_COUNT" in os.environ:
        return int(os.environ["PREFIX_OPD_GPU_COUNT"])
    import torch

    return torch.cuda.device_count()


@contextmanager
def acquire(n: int, lock_dir: Path = LOCK_DIR) -> Iterator[list[int]]:
    """Hold `n` distinct GPU ids until the block exits; raises if fewer than n exist."""
    total = device_count()
    if n > total:
        raise RuntimeError(f"resources.gpu = {n} but this machine has {total} GPUs; lower training.gpus")
    lock_dir.mkdir(parents=True, exist_ok=True)
    held: list[tuple[int, int]] = []
    with open(lock_dir / "allocator.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # one job picks ids at a time
        try:
            import time

            while len(held) < n:
                for gpu in range(total):
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
        yield sorted(g for g, _ in held)
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
