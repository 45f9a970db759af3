"""Each engine's interpreter (engines.py): which one is chosen, and a call that runs in vLLM's own environment."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from prefix_opd import engines, sampling, validate

VLLM_PYTHON = Path(__file__).resolve().parents[1] / ".venv-vllm" / "bin" / "python"  # built by `make test`


def test_the_interpreter_is_the_variable_then_the_venv_then_this_one(monkeypatch, tmp_path):
    monkeypatch.setattr(engines, "REPO", tmp_path)
    monkeypatch.setenv("PREFIX_OPD_VLLM_PYTHON", "/opt/vllm/bin/python")
    assert engines.python_for("vllm") == "/opt/vllm/bin/python"
    monkeypatch.delenv("PREFIX_OPD_VLLM_PYTHON")
    monkeypatch.setattr(engines, "importable", lambda module: module == "vllm")
    assert engines.python_for("vllm") == sys.executable
    venv = tmp_path / ".venv-vllm" / "bin" / "python"
    venv.parent.mkdir(parents=True)
    venv.touch()
    assert engines.python_for("vllm") == str(venv)


def test_a_config_that_needs_a_missing_engine_is_refused_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(engines, "REPO", tmp_path)
    monkeypatch.delenv("PREFIX_OPD_VLLM_PYTHON", raising=False)
    monkeypatch.setattr(engines, "importable", lambda module: False)
    config = {"training": {"backend": "native"}, "eval": {"sampler": "vllm"}}
    with pytest.raises(validate.MissingTool) as err:
        validate.check_engines(config)
    message = str(err.value)
    assert message.startswith("eval.sampler: 'vllm' needs vllm") and "\n" not in message
    assert "make .venv-vllm/.installed" in message and "PREFIX_OPD_VLLM_PYTHON" in message
    validate.check_engines({"training": {"backend": "native"}, "eval": {"sampler": "hf"}})  # nothing needed


def test_a_call_runs_in_the_engines_environment_and_returns_its_result(monkeypatch, tmp_path):
    assert VLLM_PYTHON.exists(), "build .venv-vllm: make .venv-vllm/.installed"
    monkeypatch.setenv("PREFIX_OPD_VLLM_PYTHON", str(VLLM_PYTHON))
    assert not sampling.vllm_available()  # the main environment has no vLLM ...
    log = tmp_path / "job.log"
    assert engines.run_sampling("vllm", "sampling.vllm_available", str(log)) is True  # ... the child has it
    rows = [{"id": "a", "x": 1}, {"id": "b", "x": 2}]
    (tmp_path / "rows.jsonl").write_text("".join(f'{{"id": "{r["id"]}", "x": {r["x"]}}}\n' for r in rows))
    assert engines.call("vllm", "eval.sampler", "data.read_jsonl", str(log), path=str(tmp_path / "rows.jsonl")) == rows
    assert engines.run_sampling("hf", "sampling.vllm_available") is False  # other samplers: this process


def test_a_failing_call_names_the_function_and_the_log_holding_its_traceback(monkeypatch, tmp_path):
    monkeypatch.setenv("PREFIX_OPD_VLLM_PYTHON", str(VLLM_PYTHON))
    log = tmp_path / "job.log"
    with pytest.raises(RuntimeError, match=r"^data.read_jsonl under vllm .* exited with status 1; its log: "):
        engines.call("vllm", "eval.sampler", "data.read_jsonl", str(log), path=str(tmp_path / "absent.jsonl"))
    assert "FileNotFoundError" in log.read_text()
