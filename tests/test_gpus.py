"""The lock-based GPU allocator: concurrent jobs never share a GPU, a killed job frees its GPUs,
asking for too many fails clearly, and under Slurm the scheduler's assignment is kept.

PREFIX_OPD_GPU_COUNT=4 stands in for a 4-GPU machine; every test uses its own lock folder.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from itertools import combinations
from pathlib import Path

import pytest

from prefix_opd import gpus

N_GPUS = 4
CTX = mp.get_context("fork")  # children inherit the monkeypatched environment


@pytest.fixture(autouse=True)
def four_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFIX_OPD_GPU_COUNT", str(N_GPUS))
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def _hold(lock_dir: str, n: int, hold_s: float, queue) -> None:
    with gpus.acquire(n, Path(lock_dir)) as ids:
        start = time.time()
        time.sleep(hold_s)
        end = time.time()
    queue.put((os.getpid(), ids, start, end))


def _hold_forever(lock_dir: str, n: int, queue) -> None:
    with gpus.acquire(n, Path(lock_dir)) as ids:
        queue.put(ids)
        time.sleep(3600)


def _acquire_and_report(lock_dir: str, n: int, queue) -> None:
    with gpus.acquire(n, Path(lock_dir)) as ids:
        queue.put((ids, time.time()))


def test_concurrent_jobs_never_share_a_gpu(tmp_path: Path) -> None:
    queue = CTX.Queue()
    procs = [CTX.Process(target=_hold, args=(str(tmp_path), 2, 1.0, queue)) for _ in range(6)]
    for p in procs:
        p.start()
    records = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=10)
        assert p.exitcode == 0

    for _, ids, _, _ in records:
        assert len(ids) == 2 and len(set(ids)) == 2 and set(ids) <= {str(g) for g in range(N_GPUS)}, ids
    overlapping = 0
    for (pa, ia, sa, ea), (pb, ib, sb, eb) in combinations(records, 2):
        if sa < eb and sb < ea:  # both held GPUs at the same time
            overlapping += 1
            assert not set(ia) & set(ib), f"processes {pa} and {pb} held GPU(s) {set(ia) & set(ib)} at once"
    # 4 GPUs / 2 each: two jobs run side by side, so the check above saw real concurrency
    assert overlapping >= 1, f"no two jobs ever held GPUs at the same time: {records}"
    # and nobody waited for a GPU that was free: at most 2 holders at any moment, never 3
    for (_, _, sa, ea), (_, _, sb, eb), (_, _, sc, ec) in combinations(records, 3):
        assert not (max(sa, sb, sc) < min(ea, eb, ec)), "three 2-GPU jobs held GPUs at once on 4 GPUs"


def test_asking_for_more_gpus_than_exist_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError) as err:
        with gpus.acquire(N_GPUS + 1, tmp_path):
            pass
    msg = str(err.value)
    assert str(N_GPUS + 1) in msg and f"{N_GPUS} GPUs" in msg, msg
    assert "training.gpus" in msg, f"the message should say which setting to lower: {msg}"
    assert not list(tmp_path.glob("gpu*.lock")), "no GPU should be locked by a refused request"


def test_gpus_of_a_killed_job_are_released(tmp_path: Path) -> None:
    queue = CTX.Queue()
    holder = CTX.Process(target=_hold_forever, args=(str(tmp_path), N_GPUS, queue))
    holder.start()
    try:
        assert queue.get(timeout=30) == [str(g) for g in range(N_GPUS)]
        waiter_q = CTX.Queue()
        waiter = CTX.Process(target=_acquire_and_report, args=(str(tmp_path), 2, waiter_q))
        waiter.start()
        time.sleep(1.5)
        assert waiter_q.empty(), "a second job got GPUs while all of them were held"
        killed_at = time.time()
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(timeout=10)
        assert holder.exitcode == -signal.SIGKILL
        ids, got_at = waiter_q.get(timeout=15)
        assert len(ids) == 2 and got_at >= killed_at
        waiter.join(timeout=10)
        assert waiter.exitcode == 0
        # and every GPU is free again afterwards
        with gpus.acquire(N_GPUS, tmp_path) as all_ids:
            assert all_ids == [str(g) for g in range(N_GPUS)]
    finally:
        if holder.is_alive():
            os.kill(holder.pid, signal.SIGKILL)


def test_slurm_assignment_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")

    def no_locks(*args, **kwargs):
        raise AssertionError("under Slurm the allocator must not pick GPUs itself")

    monkeypatch.setattr(gpus, "acquire", no_locks)
    with gpus.gpu_lease(2) as device:
        assert device == "cuda"
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "2,3"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "2,3"


def test_without_slurm_the_lease_sets_visible_devices(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_acquire = gpus.acquire
    monkeypatch.setattr(gpus, "acquire", lambda n: real_acquire(n, tmp_path))
    with gpus.gpu_lease(2) as device:
        assert device == "cuda"
        visible = os.environ["CUDA_VISIBLE_DEVICES"].split(",")
        assert len(visible) == 2 and len(set(visible)) == 2 and set(visible) <= {str(g) for g in range(N_GPUS)}
        os.environ.pop("CUDA_VISIBLE_DEVICES")  # another job sees the machine's GPUs, not this job's
        with real_acquire(N_GPUS - 2, tmp_path) as rest:  # the other two are still free
            assert not set(rest) & set(visible)
    with gpus.gpu_lease(0) as device:
        assert device == "cpu"


def test_a_users_visible_gpus_are_respected(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Outside Slurm, `CUDA_VISIBLE_DEVICES=4,5,6,7 snakemake ...` hands out 4-7 only, disjoint between jobs."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    monkeypatch.setenv("PREFIX_OPD_GPU_COUNT", "8")
    real_acquire = gpus.acquire
    monkeypatch.setattr(gpus, "acquire", lambda n: real_acquire(n, tmp_path))
    with gpus.gpu_lease(2):
        first = os.environ["CUDA_VISIBLE_DEVICES"].split(",")
        os.environ["CUDA_VISIBLE_DEVICES"] = "4,5,6,7"  # the next job inherits the user's list, not this one's
        with gpus.gpu_lease(2):
            second = os.environ["CUDA_VISIBLE_DEVICES"].split(",")
    assert set(first) | set(second) == {"4", "5", "6", "7"} and not set(first) & set(second)
    os.environ["CUDA_VISIBLE_DEVICES"] = "4,5,6,7"
    with pytest.raises(RuntimeError, match="4 GPUs visible"):
        with real_acquire(5, tmp_path):
            pass


def test_lock_files_are_per_user() -> None:
    assert str(os.getuid()) in gpus.LOCK_DIR.name or "PREFIX_OPD_GPU_LOCKS" in os.environ


def test_every_job_asks_for_the_gpus_its_engine_needs(tmp_path: Path) -> None:
    """The README's 8-GPU command plans every training run on training.gpus (verl splits them between teacher and
    student; the native engine, SeqKD and GKD, shards the student over them), vLLM jobs (evaluation, probe, case
    study) on eval.tensor_parallel."""
    import yaml
    from snakemake.utils import validate
    from workflow_helpers import copy_repo, planned, snakemake_env

    from prefix_opd.backends.verl_overrides import backend_for
    from prefix_opd.runs import expand_runs
    from prefix_opd.validate import merge_configs

    repo = copy_repo(tmp_path / "repo")
    verl_python = Path(__file__).resolve().parents[1] / ".venv-verl" / "bin" / "python"  # built by `make test`
    env = snakemake_env(repo, {"PREFIX_OPD_VERL_PYTHON": str(verl_python)})
    plan = planned(repo, "--profile", "profiles/gpu-box", "--configfile", "config/paper.yaml", env=env)
    config = merge_configs(*(yaml.safe_load((repo / "config" / f).read_text()) for f in ("config.yaml", "paper.yaml")))
    validate(config, str(repo / "config" / "schemas" / "config.schema.yaml"))
    runs = expand_runs(config)
    trains = plan.jobs_of("train")
    assert {j.wc["run"] for j in trains} == set(runs)
    assert all(int(job.res["gpu"]) == config["training"]["gpus"] == 8 for job in trains)
    assert {backend_for(r.settings(config)) for r in runs.values()} == {"verl", "native"}
    for rule in ("eval_run", "eval_suite", "teacher_prefix_probe", "case_study"):
        tp = config["eval"]["tensor_parallel"]
        assert plan.jobs_of(rule) and all(int(j.res["gpu"]) == tp for j in plan.jobs_of(rule)), rule


def test_the_paper_world_plans_in_its_own_tree_and_a_dry_run_needs_no_verl(tmp_path: Path) -> None:
    """Without verl a paper dry run plans with a warning (a real run is refused before any job), and what it
    plans lives under the paper world's folder (config world_dir), never in the toy world's results/."""
    from workflow_helpers import copy_repo, planned, run_snakemake, snakemake_env

    repo = copy_repo(tmp_path / "repo")
    env = snakemake_env(repo, {"PREFIX_OPD_VERL_PYTHON": ""})
    assert not (repo / ".venv-verl").exists()
    args = ("--profile", "profiles/gpu-box", "--configfile", "config/paper.yaml")
    plan = planned(repo, *args, env=env)
    assert "Warning: training.backend: 'verl' needs verl, which is not installed" in plan.result.output
    assert plan.jobs_of("train") and (repo / "paper-scale").is_dir() and not (repo / "results").exists()
    # each hub model is downloaded once, by its own job, and read from that folder
    downloads = {j.output[0] for j in plan.jobs_of("download_model")}
    assert downloads == {"results/models/hub/Qwen--Qwen3-8B", "results/models/hub/Qwen--Qwen3-1.7B-Base",
                         "results/models/hub/Qwen--Qwen3-8B-Base"}, downloads
    real = run_snakemake(repo, *args, "--cores", "1", env=env, timeout=300)
    assert real.returncode != 0
    assert "Invalid config: training.backend: 'verl' needs verl, which is not installed" in real.output
    assert not (repo / "paper-scale" / "results").exists()


def test_the_slurm_paper_profile_sizes_each_job(tmp_path: Path) -> None:
    """profiles/slurm-paper on the paper DAG: training jobs ask for their engine's GPUs and nodes (verl:
    training.gpus on training.nodes), the cores Ray needs, the memory and a runtime; evaluation jobs their own."""
    import yaml
    from workflow_helpers import copy_repo, planned, snakemake_env

    from prefix_opd.backends.verl_overrides import backend_for
    from prefix_opd.runs import expand_runs
    from prefix_opd.validate import merge_configs

    repo = copy_repo(tmp_path / "repo")
    verl_python = Path(__file__).resolve().parents[1] / ".venv-verl" / "bin" / "python"  # built by `make test`
    env = snakemake_env(repo, {"PREFIX_OPD_VERL_PYTHON": str(verl_python)})
    # a dry run caps threads at --cores (the cluster does not)
    plan = planned(repo, "--profile", "profiles/slurm-paper", "--configfile", "config/paper.yaml", "--cores", "256",
                   env=env)
    profile = yaml.safe_load((repo / "profiles" / "slurm-paper" / "config.yaml").read_text())
    config = merge_configs(*(yaml.safe_load((repo / "config" / f).read_text()) for f in ("config.yaml", "paper.yaml")))
    runs = expand_runs(config)
    for job in plan.jobs_of("train"):
        verl = backend_for(runs[job.wc["run"]].settings(config)) == "verl"
        assert int(job.res["nodes"]) == (config["training"]["nodes"] if verl else 1), job
        assert int(job.res["runtime"]) == profile["set-resources"]["train"]["runtime"], job
        assert int(job.res["mem_mb"]) == profile["set-resources"]["train"]["mem_mb"], job
        assert job.threads == profile["set-threads"]["train"], job
    for rule in ("eval_run", "eval_suite", "teacher_prefix_probe"):
        for job in plan.jobs_of(rule):
            assert int(job.res["runtime"]) == profile["set-resources"][rule]["runtime"], job
            assert job.threads == profile["set-threads"][rule], job
