"""The GPU environments resolve: pip's resolver (a dry run against PyPI, with this machine's local wheel
indexes and caps ignored) installs every pinned version together, with CUDA builds of torch. No GPU needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ENVS = Path(__file__).resolve().parents[1] / "envs"


def _pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        spec = line.split("#", 1)[0].strip()
        if "==" in spec:
            name, version = spec.split("==", 1)
            out[name.split("[", 1)[0].lower()] = version.strip()
    return out


@pytest.mark.parametrize("env, must_have", [
    ("verl-gpu.txt", {"verl", "vllm", "transferqueue", "orjson", "ray"}),
    ("vllm-gpu.txt", {"vllm", "math-verify"}),
])
def test_gpu_environment_resolves_with_cuda_torch(tmp_path, env, must_have):
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "pip", "--isolated", "install", "--dry-run", "--ignore-installed",
                           "--quiet", "--report", str(report), "-r", str(ENVS / env)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"envs/{env} does not resolve:\n{proc.stderr[-3000:]}"
    installs = json.loads(report.read_text())["install"]
    chosen = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in installs}
    for name, version in _pins(ENVS / env).items():
        assert chosen.get(name) == version, (name, version, chosen.get(name))
    assert must_have <= set(chosen), must_have - set(chosen)
    assert "+cpu" not in chosen["torch"] and any(n.startswith("nvidia-") for n in chosen), "not a CUDA torch"
