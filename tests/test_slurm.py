"""The workflow on a real one-node Slurm cluster, through profiles/slurm.

tests/slurm/install.sh installs Slurm when missing (Debian slurm-wlm + munge, needs root) and
tests/slurm/start.sh starts munged, slurmctld and slurmd on this machine. These tests never skip:
if Slurm cannot be installed or started, they fail with the reason. The cluster is left running
afterwards (tests/slurm/stop.sh stops it), so that parallel test sessions can share it.

Each test runs Snakemake in a copy of the working tree (PYTHONPATH points the jobs at the copy's
package) with `--profile profiles/slurm --configfile config/ci.yaml`:
- a reduced target (toy data, toy models, one short prefix-OPD run) completes through Slurm;
- a training job cancelled with `scancel` while it runs is resubmitted (the profile's `retries`)
  and resumes from its saved state instead of starting over.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "tests" / "slurm"
RUN = "small-opd_prefix7-s0"  # toy data + 3 toy models + one 4-step prefix-OPD run: 8 jobs
RESUME_RUN = "large-opd_prefix7-s0"  # the run cancelled and resumed (its own work folder)
RESUME_STEPS = 300  # long enough (~10-20 s of training on 2 CPUs) to be caught running
RESUME_SAVE_EVERY = 10
ACTIVE_STATES = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING"}


def _sh(*args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope="session")
def slurm_node() -> str:
    """Install (if missing) and start the one-node cluster; the node's name. Fails, never skips."""
    for script, timeout in (("install.sh", 900), ("start.sh", 300)):
        t0 = time.monotonic()
        try:
            proc = _sh("bash", str(SCRIPTS / script), timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"tests/slurm/{script} did not finish in {timeout} s", pytrace=False)
        if proc.returncode != 0:
            pytest.fail(f"tests/slurm/{script} failed (exit {proc.returncode}); a real Slurm cluster is "
                        f"required here.\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}",
                        pytrace=False)
        print(f"tests/slurm/{script}: {time.monotonic() - t0:.1f} s")
    return proc.stdout.strip().splitlines()[-1]


def _source_files() -> list[str]:
    """The working tree as git sees it: tracked and untracked files, without ignored ones."""
    try:
        out = _sh("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT).stdout
        files = [f for f in out.split("\0") if f]
    except (OSError, subprocess.SubprocessError):
        files = []
    return [f for f in files if (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository (no results, no venvs) for the jobs to run in."""
    dest = tmp_path_factory.mktemp("slurm_ws")
    files = _source_files()
    if files:
        for f in files:
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest / f)
    else:  # not a git checkout
        shutil.copytree(ROOT, dest, dirs_exist_ok=True, symlinks=True, ignore=shutil.ignore_patterns(
            ".venv*", "results", ".snakemake", ".git", "__pycache__", ".pytest_cache", ".ruff_cache"))
    assert (dest / "Snakefile").is_file() and (dest / "profiles/slurm/config.yaml").is_file()
    return dest


def _env(ws: Path) -> dict[str, str]:
    """The submitting environment; the plugin's `sbatch --export=ALL` hands it to every job."""
    env = os.environ.copy()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ws / "src")
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


def _snakemake(ws: Path, target: str, *configfiles: str) -> list[str]:
    # targets before --configfile, which takes several values
    return [sys.executable, "-m", "snakemake", target, "--profile", "profiles/slurm",
            "--configfile", "config/ci.yaml", *configfiles]


def _slurm_run_id(log: str) -> str:
    m = re.search(r"SLURM run ID: (\S+)", log)
    assert m, f"no 'SLURM run ID' in the Snakemake log: not run by the slurm executor?\n{log[-3000:]}"
    return m.group(1)


def _submitted(log: str) -> dict[str, list[str]]:
    """Snakemake job id -> the Slurm job ids it was submitted as (several after retries)."""
    jobs: dict[str, list[str]] = {}
    for job, slurm_id in re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log):
        jobs.setdefault(job, []).append(slurm_id)
    return jobs


def _squeue(*args: str) -> list[list[str]]:
    proc = _sh("squeue", "--noheader", "--states=all", *args)
    assert proc.returncode == 0, proc.stderr
    return [line.split("|") for line in proc.stdout.splitlines() if line.strip()]


def _assert_no_active_jobs(run_id: str) -> None:
    rows = _squeue("--name", run_id, "--format=%i|%T")
    active = [r for r in rows if r[1] in ACTIVE_STATES]
    assert not active, f"Slurm jobs of this workflow still queued or running: {active}"


def _done(log: str) -> tuple[int, int]:
    m = re.findall(r"(\d+) of (\d+) steps \(100%\) done", log)
    assert m, f"Snakemake did not report all steps done:\n{log[-3000:]}"
    return int(m[-1][0]), int(m[-1][1])


def test_slurm_env_reaches_jobs(slurm_node: str, workspace: Path) -> None:
    """What the plugin relies on: `sbatch --export=ALL` + `srun` see the submitter's PYTHONPATH."""
    out = workspace / "export_check.out"
    proc = _sh("sbatch", "--parsable", "--wait", "--export=ALL", "--ntasks=1", "--mem=500",
               f"--output={out}", "--wrap",
               f"srun {sys.executable} -c 'import prefix_opd, os; print(prefix_opd.__file__); "
               "print(os.environ[\"SLURM_JOB_ID\"])'",
               env=_env(workspace), cwd=workspace, timeout=120)
    job_out = out.read_text() if out.exists() else ""
    assert proc.returncode == 0, f"sbatch failed: {proc.stdout}\n{proc.stderr}\n{job_out}"
    lines = out.read_text().split()
    assert lines[0] == str(workspace / "src/prefix_opd/__init__.py"), lines
    assert lines[1] == proc.stdout.strip().split(";")[0], (lines, proc.stdout)


def test_verl_ray_script_starts_its_steps_side_by_side(slurm_node: str, tmp_path: Path) -> None:
    """The multi-node verl script in a real allocation of one CPU, run as the Slurm executor runs a job (inside an
    `srun` step, which holds the CPU): every step the script starts (the head's address, the Ray head, which
    blocks, and the verl command) must overlap the steps before it; without `--overlap` it waits forever. Ray and
    python are stand-ins that log their arguments (the head blocks, as `ray start --block`)."""
    from prefix_opd.backends import verl_launch

    log = tmp_path / "calls.log"
    ray, python = tmp_path / "ray", tmp_path / "python"
    ray.write_text(f"#!/bin/bash\necho \"ray $*\" >> {log}\nexec sleep 600\n")
    python.write_text(f"#!/bin/bash\ncat > /dev/null\necho \"python $*\" >> {log}\n")
    for f in (ray, python):
        f.chmod(0o755)
    text = verl_launch.slurm_script([str(python), "-m", "verl.trainer.main_ppo"], {}, 1, 0, ray=str(ray),
                                    python=str(python), join_timeout_s=30)
    script = tmp_path / "verl_slurm.sh"
    script.write_text(text.replace("sleep 10", "sleep 2"))
    try:  # as the Slurm executor runs a job: inside an `srun` step of its allocation
        proc = _sh("salloc", "--nodes=1", "--ntasks=1", "--cpus-per-task=1", "--mem=200", "srun", "--nodes=1",
                   "--ntasks=1", "bash", str(script), timeout=60)
    except subprocess.TimeoutExpired:
        calls = log.read_text() if log.exists() else ""
        pytest.fail(f"the script's steps waited for each other (no --overlap?); calls so far:\n{calls}")
    calls = log.read_text() if log.exists() else ""
    assert proc.returncode == 0, f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}\n{calls}"
    assert "ray start --head" in calls and "python -m verl.trainer.main_ppo" in calls, calls


def test_toy_run_through_slurm(slurm_node: str, workspace: Path) -> None:
    target = f"results/runs/{RUN}/metrics.csv"
    t0 = time.monotonic()
    proc = _sh(*_snakemake(workspace, target), cwd=workspace, env=_env(workspace), timeout=480)
    log = proc.stdout + proc.stderr
    (workspace / "snakemake_toy_run.log").write_text(log)
    print(f"toy run through Slurm: {time.monotonic() - t0:.1f} s")
    assert proc.returncode == 0, f"snakemake failed (exit {proc.returncode}):\n{log[-6000:]}"

    run_dir = workspace / "results/runs" / RUN
    assert (run_dir / "metrics.csv").is_file() and (run_dir / "kl_by_position.csv").is_file()
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("step_*")) == ["step_2", "step_4"]
    with open(run_dir / "metrics.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3, 4]

    # Every job went through Slurm: one submission per job, and all of them completed.
    done, total = _done(log)
    assert done == total >= 6, (done, total)  # tokenizer, pool, data, teacher, student, run settings, train
    submitted = _submitted(log)
    assert len(submitted) == total, f"{total} jobs but {len(submitted)} Slurm submissions: {submitted}"
    run_id = _slurm_run_id(log)
    _assert_no_active_jobs(run_id)
    slurm_ids = {i for ids in submitted.values() for i in ids}
    states = {r[0]: r[1] for r in _squeue("--name", run_id, "--format=%i|%T")}
    # squeue keeps finished jobs for MinJobAge (start.sh: 300 s); any it still knows must have completed
    assert states and set(states) <= slurm_ids, (states, slurm_ids)
    assert set(states.values()) == {"COMPLETED"}, states


def _train_job(run: str) -> tuple[str, str] | None:
    """(Slurm job id, state) of the newest train job of `run`, from the plugin's job comment."""
    rows = _squeue("--format=%i|%T|%k")
    mine = sorted((r for r in rows if len(r) >= 3 and r[2] == f"rule_train_wildcards_{run}"),
                  key=lambda r: int(r[0].split("_")[0]))
    return (mine[-1][0], mine[-1][1]) if mine else None


def test_cancelled_training_job_resumes(slurm_node: str, workspace: Path) -> None:
    """scancel a running train job: Snakemake resubmits it and training resumes from state.pt."""
    extra = workspace / "config" / "slurm_resume_test.yaml"
    # Table 3's steps must stay on checkpoints (validated before any job)
    extra.write_text(f"training:\n  steps: {RESUME_STEPS}\n  save_every: {RESUME_SAVE_EVERY}\n"
                     f"experiments:\n  windows:\n    steps: [{RESUME_SAVE_EVERY}, {2 * RESUME_SAVE_EVERY}]\n")
    work = workspace / "results/work" / RESUME_RUN
    shutil.rmtree(work, ignore_errors=True)  # no state of an earlier run may be mistaken for this one's
    state = work / "state.pt"
    target = f"results/runs/{RESUME_RUN}/metrics.csv"
    log_path = workspace / "snakemake_resume.log"

    t0 = time.monotonic()
    with open(log_path, "w") as log_file:
        sm = subprocess.Popen(_snakemake(workspace, target, str(extra.relative_to(workspace))),
                              cwd=workspace, env=_env(workspace), stdout=log_file, stderr=subprocess.STDOUT)
        try:
            cancelled = None
            deadline = time.monotonic() + 300
            while cancelled is None:
                assert sm.poll() is None, f"snakemake ended before the train job could be cancelled:\n" \
                                          f"{log_path.read_text()[-4000:]}"
                assert time.monotonic() < deadline, "the train job never ran with a saved state"
                job = _train_job(RESUME_RUN)
                if job and job[1] == "RUNNING" and state.exists():
                    proc = _sh("scancel", job[0])
                    assert proc.returncode == 0, proc.stderr
                    cancelled = job[0]
                    print(f"cancelled Slurm job {cancelled} after {time.monotonic() - t0:.1f} s")
                else:
                    time.sleep(0.5)
            rc = sm.wait(timeout=420)
        finally:
            if sm.poll() is None:
                sm.terminate()
                sm.wait(timeout=60)
    log = log_path.read_text()
    print(f"cancel + resume through Slurm: {time.monotonic() - t0:.1f} s")
    assert rc == 0, f"snakemake failed (exit {rc}) after the cancel:\n{log[-6000:]}"

    # Snakemake noticed the cancel and submitted the train job again ...
    train_ids = [ids for ids in _submitted(log).values() if cancelled in ids]
    assert train_ids and len(train_ids[0]) >= 2 and train_ids[0][-1] != cancelled, (cancelled, _submitted(log))
    _assert_no_active_jobs(_slurm_run_id(log))
    # ... and the retry resumed from the saved state instead of starting over,
    train_log = (workspace / "results/logs/train" / f"{RESUME_RUN}.log").read_text()
    m = re.findall(rf"resuming {re.escape(RESUME_RUN)} from step (\d+) \(of (\d+)\)", train_log)
    assert m, f"no 'resuming' in the train log:\n{train_log[-3000:]}"
    step, of = int(m[-1][0]), int(m[-1][1])
    assert 0 < step < of == RESUME_STEPS, m
    # logging every step exactly once.
    with open(workspace / "results/runs" / RESUME_RUN / "metrics.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == list(range(1, RESUME_STEPS + 1))
    ckpt_dir = workspace / "results/runs" / RESUME_RUN / "checkpoints"
    ckpts = sorted(int(p.name.removeprefix("step_")) for p in ckpt_dir.glob("step_*"))
    assert ckpts == list(range(RESUME_SAVE_EVERY, RESUME_STEPS + 1, RESUME_SAVE_EVERY)), ckpts
