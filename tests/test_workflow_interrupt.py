"""A run killed mid-way (SIGKILL to Snakemake and every job it started) resumes.

In a private copy, `snakemake --cores 2 --configfile config/ci.yaml --rerun-incomplete` runs until
some jobs have finished and a `train` job is running; then its whole process group gets SIGKILL.
The same command is started again (after `snakemake --unlock`: a killed Snakemake cannot remove its
lock files, and Snakemake refuses to start on a locked directory; see the first assertion). It must
finish (exit 0) without recomputing the jobs that had finished (their outputs keep their mtimes)
and must rerun the interrupted job(s).
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from workflow_helpers import (
    copy_repo,
    file_mtimes,
    kill_group,
    parse_jobs,
    run_snakemake,
    snakemake_cmd,
    snakemake_env,
)

COMMAND = ("--cores", "2", "--configfile", "config/ci.yaml", "--rerun-incomplete")
WAIT_FOR_TRAIN_S = 1200
RESTART_TIMEOUT_S = 3600
MIN_FINISHED = 5


def _job_key(job) -> tuple[str, tuple]:
    return job.rule, job.wildcards


def _state(log_text: str):
    """(finished jobs, started-but-unfinished jobs) from Snakemake's log."""
    jobs = {j.jobid: j for j in parse_jobs(log_text) if j.jobid}
    finished_ids = set(re.findall(r"Finished jobid: (\d+)", log_text))
    finished = [j for i, j in jobs.items() if i in finished_ids]
    running = [j for i, j in jobs.items() if i not in finished_ids]
    return finished, running


def _processes_in(copy: Path) -> list[int]:
    """Pids whose working directory is the copy (jobs that outlived the kill)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if Path(proc / "cwd").resolve() == copy.resolve():
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


def test_killed_run_resumes_without_recomputing(tmp_path: Path) -> None:
    copy = copy_repo(tmp_path / "repo")
    env = snakemake_env(copy)
    log_path = tmp_path / "first.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(snakemake_cmd(*COMMAND), cwd=copy, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + WAIT_FOR_TRAIN_S
        while True:
            assert proc.poll() is None, f"the run ended (code {proc.returncode}) before a train job ran:\n" + \
                "\n".join(log_path.read_text().splitlines()[-40:])
            assert time.monotonic() < deadline, "no train job started in time"
            finished, running = _state(log_path.read_text())
            training = [j for j in running if j.rule == "train"
                        and (copy / "results" / "logs" / "train" / f"{j.wc['run']}.log").exists()]
            if len(finished) >= MIN_FINISHED and training:
                time.sleep(0.5)  # let the job get into its work, then kill only if it is still running
                _, still = _state(log_path.read_text())
                if {_job_key(j) for j in training} & {_job_key(j) for j in still}:
                    break
            time.sleep(0.5)
    finally:
        kill_group(proc)
        proc.wait(timeout=60)
    time.sleep(1.0)
    survivors = _processes_in(copy)
    assert not survivors, f"processes of the killed run still alive: {survivors}"

    first_log = log_path.read_text()
    finished, interrupted = _state(first_log)
    interrupted_keys = {_job_key(j) for j in interrupted}
    assert any(j.rule == "train" for j in interrupted), f"no train job was interrupted: {interrupted}"
    done_outputs = [copy / f for j in finished for f in j.output]
    before = file_mtimes(done_outputs)
    assert before, "no finished outputs recorded"

    # Restart exactly as before. Snakemake's lock files survive a SIGKILL; `--unlock` is the
    # documented recovery (it only removes locks, it runs nothing).
    res = run_snakemake(copy, *COMMAND, timeout=RESTART_TIMEOUT_S)
    if res.returncode != 0 and "cannot be locked" in res.output:
        unlock = run_snakemake(copy, "--unlock", "--configfile", "config/ci.yaml", timeout=120)
        assert unlock.returncode == 0, unlock.tail()
        res = run_snakemake(copy, *COMMAND, timeout=RESTART_TIMEOUT_S)
    assert res.returncode == 0 and not res.timed_out, f"the restarted run failed:\n{res.tail(80)}"

    after = file_mtimes(done_outputs)
    changed = sorted(p for p, t in before.items() if after.get(p) != t)
    assert not changed, f"{len(changed)} outputs finished before the kill were recomputed or removed: {changed[:10]}"
    rerun_keys = {_job_key(j) for j in parse_jobs(res.output)}
    recomputed = {_job_key(j) for j in finished} & rerun_keys
    assert not recomputed, f"jobs finished before the kill ran again: {sorted(recomputed)}"
    missing = interrupted_keys - rerun_keys
    assert not missing, f"interrupted jobs were not rerun: {sorted(missing)}"
    for job in interrupted:
        for out in job.output:
            assert (copy / out).exists(), f"{out} of the interrupted job {job.rule} is missing after the restart"
    again = run_snakemake(copy, "-n", "--configfile", "config/ci.yaml", timeout=300)
    assert again.returncode == 0 and "Nothing to be done" in again.output, again.tail(40)
