"""Config checks that run before any job: the schema, then the rules a schema cannot say.

Every failure is one line that names the key and the fix, e.g.
`config/config.yaml: experiments.main.prefix_lengths[2] = 512 is longer than training.l_max = 256; ...`.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from . import engines, hub, schedules
from .runs import ConfigError, expand_runs

SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schemas" / "config.schema.yaml"
KNOWN_BENCHMARKS = ("math500", "aime24", "aime25", "gpqa", "mmlu_pro")


def merge_configs(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Snakemake's merge of --configfile files: mappings merge key by key, anything else replaces (copied)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_configs(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def check_schema(config: dict[str, Any], schema_path: Path = SCHEMA) -> None:
    schema = yaml.safe_load(schema_path.read_text())
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(config))
    if error is None:
        return
    if error.validator == "additionalProperties":
        raise ConfigError(f"{_path(error.absolute_path)}: {error.message}; remove it or fix its spelling "
                          f"(allowed keys are listed in {schema_path.name})")
    if error.validator == "required":
        missing = error.message.split("'")[1]
        raise ConfigError(f"{_path([*error.absolute_path, missing])}: missing; it is required (see {schema_path.name})")
    raise ConfigError(f"{_path(error.absolute_path)}: {error.message}")


def check_semantics(config: dict[str, Any], available_gpus: int | None = None) -> None:
    """Cross-field rules; assumes the schema passed."""
    t, ex = config["training"], config["experiments"]
    l_max = t["l_max"]
    students = config["models"]["students"]
    for key, value in ex.items():
        if isinstance(value, dict) and "student" in value and value["student"] not in students:
            raise ConfigError(f"experiments.{key}.student: unknown student '{value['student']}'; "
                              f"choose from {sorted(students)} (models.students)")
    for i, s in enumerate(ex["main"]["students"]):
        if s not in students:
            raise ConfigError(f"experiments.main.students[{i}]: unknown student '{s}'; choose from {sorted(students)}")
    for i, n in enumerate(ex["main"]["prefix_lengths"]):
        if n > l_max:
            raise ConfigError(f"experiments.main.prefix_lengths[{i}] = {n} is longer than training.l_max = {l_max}; "
                              "shorten the prefix or raise l_max")
    for key in ("lr_sweep", "gkd", "seqkd_prefix", "windows"):
        if key in ex and ex[key].get("prefix", 0) > l_max:
            raise ConfigError(f"experiments.{key}.prefix = {ex[key]['prefix']} is longer than training.l_max = "
                              f"{l_max}; shorten it or raise l_max")
    for i, s in enumerate(t["log_steps"]):
        if s >= t["steps"]:
            raise ConfigError(f"training.log_steps[{i}] = {s} is not below training.steps = {t['steps']} (step s logs "
                              "the rollouts of the student after s updates); lower it or raise steps")
    if t["steps"] % t["save_every"]:
        raise ConfigError(f"training.save_every = {t['save_every']} does not divide training.steps = {t['steps']} "
                          "(the tables compare checkpoints at multiples of it); choose a divisor")
    check_schedules(ex["main"]["schedules"])
    for i, (a, b) in enumerate(ex["windows"]["windows"]):
        if not 0 <= a < b <= l_max:
            raise ConfigError(f"experiments.windows.windows[{i}] = [{a}, {b}] must satisfy 0 <= a < b <= "
                              f"training.l_max = {l_max}")
    if ex["windows"]["tail"] > l_max:
        raise ConfigError(f"experiments.windows.tail = {ex['windows']['tail']} exceeds training.l_max = {l_max}")
    for i, s in enumerate(ex["windows"]["steps"]):
        if s % t["save_every"] or not 0 < s <= t["steps"]:
            raise ConfigError(f"experiments.windows.steps[{i}] = {s} must be a multiple of training.save_every = "
                              f"{t['save_every']} within training.steps = {t['steps']} (Table 3 reads checkpoints "
                              "there; the window runs train to the last of these steps)")
    if config["dev_benchmark"] not in config["benchmarks"]:
        raise ConfigError(f"dev_benchmark: '{config['dev_benchmark']}' is not in benchmarks {config['benchmarks']}")
    for b in config["benchmarks"]:
        if b not in config["eval"]["samples"]:
            raise ConfigError(f"eval.samples.{b}: missing; give the number of samples per question for {b}")
    if t["save_every"] > t["steps"]:
        raise ConfigError(f"training.save_every = {t['save_every']} exceeds training.steps = {t['steps']}")
    check_model_paths(config)
    if config["world"] == "toy":
        check_toy(config)
    if available_gpus is not None and t.get("gpus", 0) > available_gpus:
        raise ConfigError(f"training.gpus = {t['gpus']} is more than the {available_gpus} GPUs available "
                          "(--resources gpu=N); lower training.gpus or give more GPUs")
    if t.get("gpus", 0) > 1 and t["sampler"] != "hf":
        raise ConfigError(f"training.sampler = '{t['sampler']}': a native run on training.gpus = {t['gpus']} "
                          "shards its student over that many processes, and only the hf sampler generates from it; "
                          "set training.sampler: hf (or training.gpus: 1)")
    if t["backend"] == "verl":
        if 0 < t.get("gpus", 0) < 2:
            raise ConfigError(f"training.gpus = {t['gpus']}: a verl run needs at least 2 GPUs per node (verl puts the "
                              "teacher on GPUs of its own beside the student's); set training.gpus >= 2, or "
                              "training.backend: native")
        for i, entry in enumerate(ex["main"]["schedules"]):
            if schedules.is_adaptive(entry):
                raise ConfigError(f"experiments.main.schedules[{i}].kind = '{entry['kind']}': adaptive schedules run "
                                  "on the native engine only (their signal is measured inside its training step); "
                                  "remove the entry or set training.backend: native")
    expand_runs(config)  # duplicate run names


class MissingTool(ConfigError):
    """A config this machine cannot run (a tool not installed); a dry run plans it anyway, with a warning."""


def check_environment(config: dict[str, Any]) -> None:
    """The tools the config needs on this machine: verl, vLLM, a C compiler for the fused sampler."""
    check_engines(config)
    for section in ("eval", "training"):
        if config[section]["sampler"] == "fused":
            check_c_compiler(f"{section}.sampler")


def check_schedules(entries: list[dict[str, Any]]) -> None:
    """Each entry of experiments.main.schedules: a unique name, a known kind, exactly the kind's parameters
    (whole numbers >= 1; ratios and thresholds numbers >= 0)."""
    names: set[str] = set()
    for i, entry in enumerate(entries):
        key = f"experiments.main.schedules[{i}]"
        name, kind = entry.get("name"), entry.get("kind")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]+", name):
            raise ConfigError(f"{key}.name = {name!r}: give each schedule a name of lower-case letters, digits and _ "
                              "(it becomes part of run names)")
        if name in names:
            raise ConfigError(f"{key}.name = '{name}': two schedules share this name; rename one")
        names.add(name)
        if kind not in schedules.kinds():
            raise ConfigError(f"{key}.kind: unknown schedule kind '{kind}'; choose from {schedules.kinds()}")
        needed = schedules.parameters(kind)
        for p in entry:
            if p not in ("name", "kind", *needed):
                raise ConfigError(f"{key}.{p}: the '{kind}' schedule takes no '{p}'; it takes {needed}")
        for p in needed:
            if p not in entry:
                raise ConfigError(f"{key}.{p}: missing; the '{kind}' schedule needs {needed}")
            value = entry[p]
            if p in schedules.FLOAT_PARAMS:
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ConfigError(f"{key}.{p} = {value!r}: a number >= 0 (e.g. 0.5, not \"0.5\")")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key}.{p} = {value!r}: schedule parameters are token counts or steps, whole "
                                  "numbers >= 1; write it as one (e.g. 4, not \"4\" or 0)")


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def check_model_paths(config: dict[str, Any]) -> None:
    """Each model is a folder the pipeline builds (under results/), an existing folder, or a hub id `owner/name`."""
    models = {"models.teacher": config["models"]["teacher"]}
    models |= {f"models.students.{k}": v for k, v in config["models"]["students"].items()}
    for key, path in models.items():
        if hub.is_local(path):
            continue
        if config["world"] == "toy":  # no network: every model is local
            raise ConfigError(f"{key} = '{path}': no such folder (the toy world reads local models only); fix the "
                              "path or build the model under results/models/")
        if path.startswith(("/", ".", "~")) or not HUB_ID.fullmatch(path):
            raise ConfigError(f"{key} = '{path}': no such folder, and not a Hugging Face hub id (owner/name); fix the "
                              "path or give a hub id")


def check_toy(config: dict[str, Any]) -> None:
    from .toy.tokenizer import build_tokenizer

    n_tokens = len(build_tokenizer())
    for name, spec in config["toy"]["models"].items():
        if spec["hidden"] % spec["heads"] or spec["heads"] % spec["kv_heads"]:
            raise ConfigError(f"toy.models.{name}: hidden ({spec['hidden']}) must be divisible by heads "
                              f"({spec['heads']}) and heads by kv_heads ({spec['kv_heads']})")
        if spec.get("vocab", n_tokens) < n_tokens:
            raise ConfigError(f"toy.models.{name}.vocab = {spec['vocab']} does not fit the tokenizer's "
                              f"{n_tokens} tokens; raise it to at least {n_tokens}")
    teacher_vocab = config["toy"]["models"]["teacher"].get("vocab", n_tokens)
    for name, spec in config["toy"]["models"].items():
        if spec.get("vocab", n_tokens) != teacher_vocab:
            raise ConfigError(f"toy.models.{name}.vocab = {spec.get('vocab', n_tokens)} differs from "
                              f"toy.models.teacher.vocab = {teacher_vocab}; teacher and students must share one "
                              "vocabulary (the default is the tokenizer's length)")
    models = config["toy"]["models"]
    for name, spec in models.items():
        init, seen = spec.get("init_from"), {name}
        while init is not None:
            if init not in models or init in seen:
                raise ConfigError(f"toy.models.{name}.init_from: '{spec['init_from']}' is not another toy model "
                                  f"(or starts a cycle); choose from {sorted(set(models) - {name})}")
            if (models[init]["hidden"], models[init]["layers"]) != (spec["hidden"], spec["layers"]):
                raise ConfigError(f"toy.models.{name}.init_from: '{init}' has another shape; a model can only start "
                                  "from one of the same hidden size and layers")
            seen.add(init)
            init = models[init].get("init_from")
    for b in config["benchmarks"]:
        if b not in config["toy"]["benchmarks"]:
            raise ConfigError(f"toy.benchmarks.{b}: missing; the toy world needs a spec for every benchmark")
    check_paper_lengths(config)


def named_lengths(config: dict[str, Any]) -> dict[str, int]:
    """Every length that a table or figure names by the paper's value: config key -> toy length."""
    ex = config["experiments"]
    out = {f"experiments.main.prefix_lengths[{i}]": n for i, n in enumerate(ex["main"]["prefix_lengths"])}
    w = ex.get("windows", {})
    for i, (a, b) in enumerate(w.get("windows", [])):
        out[f"experiments.windows.windows[{i}][0]"], out[f"experiments.windows.windows[{i}][1]"] = a, b
    for key in ("windows", "lr_sweep", "gkd", "seqkd_prefix"):
        if "prefix" in ex.get(key, {}):
            out[f"experiments.{key}.prefix"] = ex[key]["prefix"]
    if "tail" in w:
        out["experiments.windows.tail"] = w["tail"]
    return out


def check_paper_lengths(config: dict[str, Any]) -> None:
    """Toy lengths map to the paper's by a table (lines, not one factor): each named length needs an entry."""
    table = {int(k) for k in config["toy"]["paper_lengths"]}
    for key, n in named_lengths(config).items():
        if int(n) not in table:
            raise ConfigError(f"{key} = {n} has no entry in toy.paper_lengths (known: {sorted(table)}); add "
                              f"'{n}: <paper tokens>' there")


def check_engines(config: dict[str, Any]) -> None:
    """verl for training.backend: verl, vLLM for eval.sampler: vllm: each importable here or in its own
    environment (`engines.python_for`). The methods verl cannot run (GKD, SeqKD) run natively."""
    for key, engine, needed in (("training.backend: 'verl'", "verl", config["training"]["backend"] == "verl"),
                                ("eval.sampler: 'vllm'", "vllm", config["eval"]["sampler"] == "vllm")):
        if needed and engines.python_for(engine) is None:
            raise MissingTool(engines.missing_message(engine, key))


def check_c_compiler(key: str) -> None:
    """The 'fused' sampler compiles fused_decode.c at first use: a C compiler must be on PATH."""
    import os
    import shutil

    compiler = os.environ.get("CC", "cc")
    if not shutil.which(compiler):
        raise MissingTool(f"{key}: 'fused' compiles a C kernel, but the C compiler {compiler!r} is not on PATH; "
                          "install gcc (or set $CC), or set it to 'torch'")


def check_config(config: dict[str, Any], source: str = "config", available_gpus: int | None = None) -> None:
    """Schema + semantics; re-raises with the config file's name in front."""
    try:
        check_schema(config)
        check_semantics(config, available_gpus)
        check_environment(config)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
