"""Helpers for the workflow tests: a private copy of the repo, running Snakemake in it, and reading
which jobs a dry run plans.

Every workflow test works in a copy (never in the checkout): the copy's `src/` goes first on
PYTHONPATH, so Snakemake and its jobs import the copy's package, and touching a module there is
seen by the copy's DAG only.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
# Top-level entries that are not part of the workflow (environments, outputs, metadata, caches).
_TOP_LEVEL_SKIP = {"results", "tests"}
_ANYWHERE_SKIP = {"__pycache__", ".pytest_cache", ".ruff_cache", ".snakemake"}


def _ignore(directory: str, names: list[str]) -> set[str]:
    skip = {n for n in names if n in _ANYWHERE_SKIP or n.endswith(".egg-info")}
    if Path(directory).resolve() == REPO:
        skip |= {n for n in names if n.startswith(".") or n in _TOP_LEVEL_SKIP}
    return skip


def copy_repo(dest: Path) -> Path:
    """Copy the workflow (Snakefile, rules, scripts, config, envs, src, ...) without outputs or venvs."""
    shutil.copytree(REPO, dest, ignore=_ignore, symlinks=True)
    return dest


def snakemake_env(workdir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(workdir / "src")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PREFIX_OPD_GPU_LOCKS"] = str(workdir / ".gpu_locks")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(var, "1")
    env.pop("SNAKEMAKE_PROFILE", None)
    env.update(extra or {})
    return env


@dataclass
class Result:
    returncode: int
    output: str  # stdout and stderr, interleaved
    elapsed: float  # wall-clock seconds
    timed_out: bool = False
    cpu: float = 0.0  # user + system seconds of Snakemake and every job it ran (load-independent)
    stopped: bool = False  # killed because `stop_when` said so

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.output.splitlines()[-n:])


def snakemake_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", *args]


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group `proc` leads (Snakemake and every job it started)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_snakemake(workdir: Path, *args: str, timeout: float = 1800, env: dict[str, str] | None = None,
                  stop_when: Callable[[], bool] | None = None) -> Result:
    """Run `python -m snakemake ARGS` in `workdir` in its own process group.

    The group is killed on timeout, or as soon as `stop_when()` (polled every 0.2 s) returns True.
    """
    start, cpu0 = time.monotonic(), _children_cpu()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(snakemake_cmd(*args), cwd=workdir, env=env or snakemake_env(workdir),
                                stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        timed_out = stopped = False
        while proc.poll() is None:
            if time.monotonic() - start > timeout:
                timed_out = True
            elif stop_when is not None and stop_when():
                stopped = True
            if timed_out or stopped:
                kill_group(proc)
                proc.wait()
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - start
        log.seek(0)
        out = log.read()
    return Result(proc.returncode, out, elapsed, timed_out, _children_cpu() - cpu0, stopped)


# ---------------------------------------------------------------- reading what a dry run plans

_JOB_HEADER = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):\s*$")


@dataclass(frozen=True)
class Job:
    rule: str
    wildcards: tuple[tuple[str, str], ...] = ()
    output: tuple[str, ...] = ()
    jobid: str = ""
    resources: tuple[tuple[str, str], ...] = ()
    threads: int = 1

    @property
    def wc(self) -> dict[str, str]:
        return dict(self.wildcards)

    @property
    def res(self) -> dict[str, str]:
        return dict(self.resources)


def parse_jobs(output: str) -> list[Job]:
    """Job blocks (`rule NAME:` / `localrule` / `checkpoint`, indented fields) in Snakemake's log."""
    jobs: list[Job] = []
    lines = output.splitlines()
    i = 0
    while i < len(lines):
        m = _JOB_HEADER.match(lines[i])
        i += 1
        if not m:
            continue
        fields: dict[str, str] = {}
        while i < len(lines) and lines[i].startswith("    ") and ":" in lines[i]:
            key, _, value = lines[i].strip().partition(":")
            fields[key] = value.strip()
            i += 1
        wildcards = tuple(tuple(kv.split("=", 1)) for kv in fields.get("wildcards", "").split(", ") if "=" in kv)
        output_files = tuple(f for f in fields.get("output", "").split(", ") if f)
        resources = tuple(tuple(kv.split("=", 1)) for kv in fields.get("resources", "").split(", ") if "=" in kv)
        jobs.append(Job(m.group(1), wildcards, output_files, fields.get("jobid", ""), resources,
                        int(fields.get("threads", "1"))))
    return jobs


def parse_job_stats(output: str) -> Counter:
    """The `Job stats:` table (rule -> count); empty when Snakemake has nothing to do."""
    lines = output.splitlines()
    counts: Counter = Counter()
    for k, line in enumerate(lines):
        if line.strip() == "Job stats:":
            for row in lines[k + 3:]:
                parts = row.split()
                if len(parts) != 2 or parts[0] == "total":
                    break
                counts[parts[0]] = int(parts[1])
            break
    return counts


@dataclass
class Plan:
    jobs: list[Job]
    counts: Counter
    result: Result = field(repr=False)

    @property
    def rules(self) -> set[str]:
        return set(self.counts)

    def runs(self) -> set[str]:
        """Run names (the `run` wildcard) of every planned job that has one."""
        return {j.wc["run"] for j in self.jobs if "run" in j.wc}

    def jobs_of(self, rule: str) -> list[Job]:
        return [j for j in self.jobs if j.rule == rule]


def planned(workdir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Plan:
    """Dry-run `snakemake -n ARGS` and return the jobs it plans (checked against its job-stats table)."""
    res = run_snakemake(workdir, "-n", *args, timeout=timeout, env=env)
    assert res.returncode == 0 and not res.timed_out, f"dry run failed:\n{res.tail()}"
    jobs = parse_jobs(res.output)
    counts = parse_job_stats(res.output)
    if not counts:
        assert "Nothing to be done" in res.output, f"no job-stats table and no 'Nothing to be done':\n{res.tail()}"
    assert Counter(j.rule for j in jobs) == counts, (
        f"job blocks {Counter(j.rule for j in jobs)} disagree with the job-stats table {counts}")
    return Plan(jobs, counts, res)


def rules_defined_in(workdir: Path, *smk_files: str) -> set[str]:
    """Names of the rules and checkpoints a set of rule files defines (e.g. 'train.smk')."""
    names: set[str] = set()
    for name in smk_files:
        text = (workdir / "workflow" / "rules" / name).read_text()
        names |= set(re.findall(r"^\s*(?:rule|checkpoint)\s+(\w+)\s*:", text, flags=re.M))
    return names


# ---------------------------------------------------------------- config and file helpers


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def merged_config(workdir: Path, *overrides: dict[str, Any] | Path) -> dict[str, Any]:
    """config/config.yaml, then config/ci.yaml, then each override, with the schema's defaults."""
    from snakemake.utils import validate

    from prefix_opd.validate import merge_configs

    config: dict[str, Any] = {}
    for part in (workdir / "config" / "config.yaml", workdir / "config" / "ci.yaml", *overrides):
        data = yaml.safe_load(Path(part).read_text()) if isinstance(part, Path) else part
        config = merge_configs(config, data or {})
    validate(config, str(workdir / "config" / "schemas" / "config.schema.yaml"))
    return config


def run_names(config: dict[str, Any]) -> set[str]:
    from prefix_opd.runs import expand_runs

    return set(expand_runs(config))


def file_mtimes(paths: Iterable[Path]) -> dict[str, int]:
    """mtime_ns of every file at or under each path (directories are walked)."""
    out: dict[str, int] = {}
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file():
                    out[str(f)] = f.stat().st_mtime_ns
        elif p.exists():
            out[str(p)] = p.stat().st_mtime_ns
    return out


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def append_comment(path: Path, text: str = "# touched by a test\n") -> None:
    """Change a source file's content and mtime (as an edit would)."""
    time.sleep(0.01)
    with open(path, "a") as f:
        f.write(text)


def fmt_jobs(jobs: Sequence[Job]) -> str:
    return "\n".join(f"  {j.rule} {dict(j.wildcards)}" for j in jobs)
