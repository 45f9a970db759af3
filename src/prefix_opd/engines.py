"""The interpreter each external engine runs in, and calling a function of this package there.

verl 0.9.1 and vLLM need other `transformers` versions than the main stage (docs/design.md section 8), so each
lives in its own environment: `$PREFIX_OPD_<ENGINE>_PYTHON`, else `<repo>/.venv-<engine>/bin/python`, else this
interpreter when it imports the engine. A job whose work needs vLLM (evaluation, probe, case study with
`eval.sampler: vllm`) runs that work there through `call`: arguments and result travel as JSON, the child logs
to the job's own log file, and it sees this checkout's `src/` first on its path.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SRC_DIR = Path(__file__).resolve().parents[1]
REPO = SRC_DIR.parent
ENGINES = ("verl", "vllm")


def env_var(engine: str) -> str:
    return f"PREFIX_OPD_{engine.upper()}_PYTHON"


def venv_python(engine: str) -> Path:
    return REPO / f".venv-{engine}" / "bin" / "python"


def importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def python_for(engine: str) -> str | None:
    """The interpreter that has `engine`, or None (see the module docstring for the order)."""
    chosen = os.environ.get(env_var(engine))
    if chosen:
        return chosen
    if venv_python(engine).exists():
        return str(venv_python(engine))
    return sys.executable if importable(engine) else None


def missing_message(engine: str, key: str) -> str:
    return (f"{key} needs {engine}, which is not installed: none at {venv_python(engine)}, none importable in "
            f"{sys.executable} and {env_var(engine)} unset; build it with `make .venv-{engine}/.installed` or "
            f"point {env_var(engine)} at a python that has it")


def require_python(engine: str, key: str) -> str:
    """`python_for(engine)`, or a one-line RuntimeError naming the config key that needs it and the fix."""
    python = python_for(engine)
    if python is None:
        raise RuntimeError(missing_message(engine, key))
    return python


def _resolve(function: str) -> Any:
    """`"evaluate.evaluate_run"` -> the function `prefix_opd.evaluate.evaluate_run`."""
    module_name, _, name = function.rpartition(".")
    return getattr(importlib.import_module(f"prefix_opd.{module_name}"), name)


def call(engine: str, key: str, function: str, log_path: str | None = None, **kwargs: Any) -> Any:
    """`module.function(**kwargs)` of this package (`function` = "evaluate.evaluate_run") in `engine`'s interpreter:
    in this process when it is that interpreter (or imports the engine), else in a child process. Arguments and
    result must be JSON data."""
    python = require_python(engine, key)
    if python == sys.executable or importable(engine):
        return _resolve(function)(**kwargs)
    with tempfile.TemporaryDirectory(prefix="prefix_opd_call_") as tmp:
        request, answer = Path(tmp) / "request.json", Path(tmp) / "answer.json"
        request.write_text(json.dumps({"function": function, "kwargs": kwargs, "log": log_path}))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(SRC_DIR),
                                                                         os.environ.get("PYTHONPATH")])))
        proc = subprocess.run([python, "-m", "prefix_opd.engines", str(request), str(answer)], env=env)
        if proc.returncode or not answer.exists():
            where = f"; its log: {log_path}" if log_path else ""
            raise RuntimeError(f"{function} under {engine} ({python}) exited with status {proc.returncode}{where}")
        return json.loads(answer.read_text())


def run_sampling(sampler: str, function: str, log_path: str | None = None, **kwargs: Any) -> Any:
    """`function` (as in `call`) where its sampler lives: vLLM's interpreter for "vllm", this process otherwise."""
    if sampler == "vllm":
        return call("vllm", "eval.sampler: 'vllm'", function, log_path, **kwargs)
    return _resolve(function)(**kwargs)


def _plain(value: Any) -> Any:
    """JSON for what the called functions return beyond plain data: numpy scalars, data frames."""
    if hasattr(value, "to_dict"):
        return value.to_dict(orient="records")
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON data")


def _serve(request_path: str, answer_path: str) -> None:
    """The child side of `call`: run the requested function and write its result."""
    from .logs import to_file

    request = json.loads(Path(request_path).read_text())
    to_file(request["log"])
    result = _resolve(request["function"])(**request["kwargs"])
    Path(answer_path).write_text(json.dumps(result, default=_plain))


if __name__ == "__main__":  # vLLM starts its engine core with spawn: the guard keeps the child importable
    _serve(sys.argv[1], sys.argv[2])
