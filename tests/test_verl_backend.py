"""The verl backend: overrides against verl 0.9.1's real config schema, data conversion, the agent-loop hook
(per-step max_tokens, window masks), metrics mapping and launch scripts.

verl cannot live in the main venv (transformers ranges collide), so everything that imports verl runs in
`.venv-verl` through `tests/verl_compose.py` as a subprocess. A missing `.venv-verl` is a failure, never a
skip: build it with `make .venv-verl/.installed`.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from prefix_opd import flops
from prefix_opd.backends import verl_data, verl_launch, verl_overrides, verl_schedule
from prefix_opd.checkpointing import METRIC_COLUMNS
from prefix_opd.methods import generation_length, rollout_spec
from prefix_opd.models import stop_token_ids
from prefix_opd.runs import ON_POLICY_METHODS, ConfigError, RunSpec, expand_runs, training_seed
from prefix_opd.schedules import is_adaptive, length_at
from prefix_opd.toy.tokenizer import build_tokenizer
from prefix_opd.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
VERL_PYTHON = ROOT / ".venv-verl" / "bin" / "python"
HELPER = ROOT / "tests" / "verl_compose.py"
GPUS_PER_NODE, NNODES = 8, 2


def run_helper(job: dict, tmp: Path, timeout: int = 900) -> dict:
    if not VERL_PYTHON.exists():
        pytest.fail(f"{VERL_PYTHON} is missing: build the verl environment with `make .venv-verl/.installed` "
                    "(pip install -r envs/verl.txt into .venv-verl)")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), HF_DATASETS_CACHE=str(tmp / "hf_datasets"),
               HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([str(VERL_PYTHON), str(HELPER)], input=json.dumps(job), capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=tmp)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        pytest.fail(f"verl helper failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def _ok(answer: dict) -> dict:
    if "error" in answer:
        pytest.fail(f"verl helper raised:\n{answer['error']}")
    return answer


@pytest.fixture(scope="module")
def config() -> dict:
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg["training"]["backend"] = "verl"
    return cfg


@pytest.fixture(scope="module")
def opd_settings(config) -> dict[str, dict]:
    """The on-policy runs verl takes (adaptive schedules are refused with verl at validation)."""
    runs = {name: r.settings(config) for name, r in expand_runs(config).items()
            if r.method in ON_POLICY_METHODS and not (r.schedule and is_adaptive(r.schedule))}
    assert {s["method"] for s in runs.values()} == set(ON_POLICY_METHODS)
    return runs


@pytest.fixture(scope="module")
def paper_settings() -> dict[str, dict]:
    """config/paper.yaml (backend verl, 512 x 4 rollouts, L_max 16384, bf16): its OPD runs must compose too."""
    cfg = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    return {f"paper:{name}": r.settings(cfg) for name, r in expand_runs(cfg).items() if r.method in ON_POLICY_METHODS}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("verl")


def _overrides(settings: dict, work: Path, **kw) -> dict:
    return verl_overrides.override_dict(settings, str(work / "train.parquet"), str(work / "val.parquet"),
                                        str(work / "out" / settings["name"]), GPUS_PER_NODE, NNODES, **kw)


QUOTING_DIR = "out dir, with=odd 'chars'"


def _compose_job(opd_settings: dict, work: Path) -> tuple[dict, dict]:
    """The compose job and each run's intended {key: value}, rendered at one instant (model paths resolve
    against the file system, which other jobs may be filling while the tests run)."""
    intended = {name: _overrides(s, work) for name, s in opd_settings.items()}
    runs = {name: [f"{k}={verl_overrides._value(v)}" for k, v in o.items()] for name, o in intended.items()}
    first = next(iter(opd_settings.values()))
    runs["quoting"] = verl_overrides.build_overrides(first, str(work / "train.parquet"), str(work / "val.parquet"),
                                                     str(work / QUOTING_DIR), GPUS_PER_NODE, NNODES)
    return {"mode": "compose", "runs": runs}, intended


@pytest.fixture(scope="module")
def verl_answers(opd_settings, paper_settings, parquet, work) -> dict:
    """Every check that needs verl, in one `.venv-verl` process (its imports take ~10 s)."""
    s, prepared = parquet["settings"], parquet["prepared"]
    compose, intended = _compose_job(opd_settings | paper_settings, work)
    jobs = {"compose": compose,
            "dataset": {"mode": "dataset", "overrides": verl_launch.command(s, prepared, GPUS_PER_NODE, NNODES)[3:],
                        "parquet": prepared["train"], "n": 3}}
    for key, (settings, steps, n_tokens) in _agent_loop_cases(opd_settings).items():
        jobs[key] = _agent_loop_job(settings, work, steps, n_tokens)
    for key, batch in LOSS_BATCHES.items():
        jobs[key] = {"mode": "aggregate", "loss_mat": batch["k1"], "mask": batch["mask"],
                     "loss_agg_mode": verl_overrides.LOSS_AGG_MODE}
    answers = run_helper({"mode": "batch", "jobs": jobs}, work)
    answers["intended"] = intended
    return answers


@pytest.fixture(scope="module")
def composed(verl_answers) -> dict:
    return _ok(verl_answers["compose"])


def test_build_overrides_renders_override_dict(opd_settings, work):
    for s in opd_settings.values():
        args = (s, str(work / "train.parquet"), str(work / "val.parquet"), str(work / "o"), GPUS_PER_NODE, NNODES)
        rendered = [f"{k}={verl_overrides._value(v)}" for k, v in verl_overrides.override_dict(*args).items()]
        assert verl_overrides.build_overrides(*args) == rendered


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=1e-12)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


# ---------------------------------------------------------------------------------------------- (a) overrides


def test_every_opd_run_composes_and_every_key_resolves(composed, verl_answers, opd_settings, paper_settings):
    assert len(opd_settings) >= 18 and len(paper_settings) >= 18
    for name in opd_settings | paper_settings:
        answer = composed[name]
        assert answer["unresolved"] == [], name
        assert answer["full_resolve"] == "ok", (name, answer["full_resolve"])
        assert answer["dataclass_errors"] == {}, (name, answer["dataclass_errors"])
        intended = verl_answers["intended"][name]
        for key, value in intended.items():
            got = answer["values"][key.lstrip("+")]
            assert _same(got, value), f"{name}: {key} resolved to {got!r}, intended {value!r}"


def test_distillation_section_is_exactly_the_intended_one(composed, opd_settings, paper_settings):
    for name, settings in (opd_settings | paper_settings).items():
        d = composed[name]["distillation"]
        loss = dict(d["distillation_loss"])
        assert loss.pop("_target_") == "verl.workers.config.DistillationLossConfig"
        assert loss == verl_overrides.distillation_loss_keys(), name
        assert d["enabled"] is True and d["nnodes"] == NNODES
        assert d["n_gpus_per_node"] == GPUS_PER_NODE // 2
        teacher = d["teacher_models"]["teacher_model"]
        assert teacher["model_path"] == os.path.abspath(settings["teacher_path"]) or \
            teacher["model_path"] == settings["teacher_path"]
        assert teacher["inference"]["tensor_model_parallel_size"] == 1
        # what verl's own dataclasses make of it (DistillationConfig.__post_init__ ran its pool checks)
        dc = composed[name]["distillation_dataclass"]
        assert dc["loss_mode"] == "k1" and dc["use_estimator"] and not dc["use_topk"]
        assert dc["use_policy_gradient"] is True and dc["use_task_rewards"] is False
        assert dc["loss_max_clamp"] is None and dc["log_prob_min_clamp"] is None
        assert dc["policy_loss_mode"] == "vanilla" and dc["clip_ratio_low"] == 1.0
        assert dc["num_replicas"] == NNODES * GPUS_PER_NODE // 2  # one TP=1 teacher replica per teacher GPU
        assert composed[name]["rollout_correction"] == {"bypass_mode": True, "loss_type": "reinforce"}


def test_per_method_values(composed, opd_settings, paper_settings):
    for name, s in (opd_settings | paper_settings).items():
        l_max = s["training"]["l_max"]
        v = composed[name]["values"]
        expected_len = {"opd": l_max, "opd_prefix": s["l_train"], "opd_schedule": l_max,
                        "opd_window": s["window"][1] if s["window"] else l_max}[s["method"]]
        assert v["data.max_response_length"] == expected_len, name
        assert v["actor_rollout_ref.rollout.n"] == s["training"]["samples_per_prompt"]
        assert v["data.train_batch_size"] == s["training"]["batch_prompts"]
        assert v["actor_rollout_ref.actor.ppo_mini_batch_size"] == s["training"]["batch_prompts"]
        assert v["actor_rollout_ref.actor.optim.lr"] == pytest.approx(s["lr"])
        assert v["trainer.total_training_steps"] == s["steps"] and v["trainer.save_freq"] == s["save_every"]
        assert v["trainer.nnodes"] == NNODES and v["trainer.n_gpus_per_node"] == GPUS_PER_NODE // 2
        assert v["actor_rollout_ref.actor.loss_agg_mode"] == "seq-mean-token-sum"
        # one full sequence per micro-batch: the logits of prompt + response tokens, no more
        tokens = v["actor_rollout_ref.actor.ppo_max_token_len_per_gpu"]
        assert tokens == v["data.max_prompt_length"] + v["data.max_response_length"], name
        assert v["actor_rollout_ref.rollout.agent.default_agent_loop"] == verl_schedule.AGENT_LOOP_NAME
        assert v["actor_rollout_ref.actor.fsdp_config.dtype"] == v["actor_rollout_ref.rollout.dtype"] == \
            s["training"]["dtype"]


def test_odd_paths_are_quoted_for_hydra(composed, work):
    v = composed["quoting"]["values"]
    assert v["trainer.default_local_dir"] == str(work / QUOTING_DIR / "checkpoints")
    assert v["actor_rollout_ref.rollout.agent.agent_loop_config_path"] == str(work / QUOTING_DIR / "agent_loops.yaml")


def test_unsupported_methods_and_gamma_are_refused(config, opd_settings):
    assert set(verl_overrides.UNSUPPORTED_METHODS) == {"gkd", "seqkd", "seqkd_prefix"}
    assert set(verl_overrides.RUN_NATIVELY) == {"opd_window"}  # empty window masks crash verl 0.9.1's loss metric
    native = verl_overrides.UNSUPPORTED_METHODS | verl_overrides.RUN_NATIVELY
    for run in expand_runs(config).values():
        expected = "native" if run.method in native else "verl"
        assert verl_overrides.backend_for(run.settings(config)) == expected
        if run.method in verl_overrides.UNSUPPORTED_METHODS:
            with pytest.raises(ConfigError, match=f"cannot run '{run.method}'"):
                verl_overrides.build_overrides(run.settings(config), "t", "v", "o", 8, 1)
    s = dict(next(iter(opd_settings.values())))
    s["training"] = dict(s["training"], gamma=0.5)
    with pytest.raises(ConfigError, match="training.gamma"):
        verl_overrides.build_overrides(s, "t", "v", "o", 8, 1)


def test_gpu_split_is_checked(opd_settings):
    s = next(iter(opd_settings.values()))
    with pytest.raises(ConfigError, match="at least 2 GPUs"):
        verl_overrides.build_overrides(s, "t", "v", "o", 1, 1)
    with pytest.raises(ConfigError, match="do not split evenly"):
        verl_overrides.build_overrides(s, "t", "v", "o", 8, 1, teacher_gpus_per_node=3)  # 32 rollouts / 5 GPUs
    assert verl_overrides.split_gpus(8) == (4, 4) and verl_overrides.split_gpus(8, 2) == (6, 2)


# ---------------------------------------------------------------------------------------------- (b) data


def _records(n: int = 13) -> list[dict]:
    return [{"id": f"q{i}", "prompt": f"Box the answer. 7*{i}+3 mod 100 = ?", "response": f"{i}</think>\\boxed{{{i}}}",
             "domain": "math"} for i in range(n)]


def test_rows_follow_the_native_engine_order(opd_settings):
    s = next(iter(opd_settings.values()))
    records = _records()
    rows = verl_data.train_rows(records, s)
    b = s["training"]["batch_prompts"]
    assert len(rows) == s["steps"] * b
    fake = SimpleNamespace(t=s["training"], s=s, records=records, seed=training_seed(s))
    for step in range(s["steps"]):
        native = Trainer.batch_indices(fake, step)
        got = [r["extra_info"]["index"] for r in rows[step * b:(step + 1) * b]]
        assert got == native, step
        assert {r["extra_info"]["step"] for r in rows[step * b:(step + 1) * b]} == {step}
        assert all(r["prompt"] == [{"role": "user", "content": records[i]["prompt"]}] for i, r in zip(
            native, rows[step * b:(step + 1) * b], strict=True))


@pytest.fixture(scope="module")
def parquet(opd_settings, work) -> dict:
    s = next(iter(opd_settings.values()))
    questions = work / "questions.jsonl"
    questions.write_text("".join(json.dumps(r) + "\n" for r in _records()))
    from prefix_opd.toy.tokenizer import build_tokenizer

    prepared = verl_launch.prepare(s, questions, work / "prepared", tokenizer=build_tokenizer())
    return {"settings": s, "prepared": prepared, "rows": verl_data.train_rows(_records(), s)}


def test_parquet_round_trip(parquet):
    prepared = parquet["prepared"]
    assert verl_data.read_parquet(prepared["train"]) == parquet["rows"]
    assert verl_data.read_parquet(prepared["val"]) == verl_data.val_rows(_records())
    from prefix_opd.models import encode_prompt
    from prefix_opd.toy.tokenizer import build_tokenizer

    tok = build_tokenizer()
    assert prepared["max_prompt_length"] == max(len(encode_prompt(tok, r["prompt"])) for r in _records())


def test_verl_dataset_reads_our_parquet(parquet, verl_answers):
    answer = _ok(verl_answers["dataset"])
    assert answer["len"] == len(parquet["rows"])
    for item, row in zip(answer["items"], parquet["rows"], strict=False):
        assert item["raw_prompt"] == row["prompt"] and item["data_source"] == verl_data.DATA_SOURCE
        assert item["index"] == row["extra_info"]["index"] and item["extra_info"]["step"] == row["extra_info"]["step"]


# ---------------------------------------------------------------------------------------------- (c) hook


def test_max_tokens_and_masks_per_method(opd_settings):
    """The agent loop's length and mask are `prefix_opd.methods`' (the native engine's): L_train, L_train(step),
    the window's end or L_max; the window's positions or the last W tokens."""
    for s in opd_settings.values():
        spec = verl_schedule.rollout_spec(s)
        l_max = s["training"]["l_max"]
        for step in range(s["steps"]):
            if s["method"] == "opd_prefix":
                expected = s["l_train"]
            elif s["method"] == "opd_schedule":
                expected = length_at(s["schedule"], step, l_max)
            elif s["method"] == "opd_window" and s.get("window"):
                expected = s["window"][1]
            else:
                expected = l_max
            assert verl_schedule.max_tokens_at(spec, step) == expected, (s["name"], step)
        for n in (0, 1, 5, 17, 40, 63, 64, 200, 256):
            mask = verl_schedule.loss_mask(spec, n)
            if s["method"] != "opd_window":
                expected = [1] * n
            elif s.get("window"):
                a, b = s["window"]
                expected = [int(a <= t < b) for t in range(n)]
            else:
                expected = [int(t >= n - s["tail"]) for t in range(n)]
            assert mask == expected, (s["name"], n)


def _agent_loop_job(settings: dict, work: Path, steps: list[int], n_tokens: int | None = None) -> dict:
    out = work / "agent" / settings["name"]
    prepared = {"train": str(work / "t.parquet"), "val": str(work / "v.parquet"), "out_dir": str(out),
                "agent_loops": str(verl_schedule.write_agent_loop_config(settings, out / "agent_loops.yaml")),
                "max_prompt_length": 512}
    overrides = verl_launch.command(settings, prepared, GPUS_PER_NODE, NNODES)[3:]
    return {"mode": "agent_loop", "overrides": overrides, "agent_loops": prepared["agent_loops"],
            "prompt": "Box the answer. 12 -> ?", "steps": steps, "n_tokens": n_tokens}


def _run(opd_settings, method: str, **match) -> dict:
    return next(s for s in opd_settings.values() if s["method"] == method
                and all(s.get(k) == v for k, v in match.items()))


TAIL_RESPONSE = 40  # the fake server stops (EOS) before L_max: the tail is the last W tokens of what it made


def _agent_loop_cases(opd_settings) -> dict:
    return {"schedule": (_run(opd_settings, "opd_schedule"), [1, 2, 3, 10, 60], None),
            "window": (_run(opd_settings, "opd_window", tail=None), [1, 7], None),
            "tail": (_run(opd_settings, "opd_window", window=None), [3], TAIL_RESPONSE),
            "prefix": (_run(opd_settings, "opd_prefix"), [1, 30], None)}


def test_agent_loop_schedules_max_tokens_per_step(opd_settings, verl_answers):
    s = _run(opd_settings, "opd_schedule")
    answer = _ok(verl_answers["schedule"])
    assert answer["agent_loop_class"] == "prefix_opd.backends.verl_schedule.PrefixOPDAgentLoop"
    assert [r["step"] for r in answer["results"]] == [1, 2, 3, 10, 60]
    for r in answer["results"]:
        expected = length_at(s["schedule"], r["step"] - 1, s["training"]["l_max"])
        assert r["max_tokens"] == expected and r["n_response"] == expected
        assert r["response_mask"] == [1] * expected
        assert r["prompt_matches_native"] and r["reward_score"] == 0.0 and r["n_logprobs"] == expected
        assert r["stop_token_ids"] == sorted(stop_token_ids(build_tokenizer())), r  # <|im_end|>, <|endoftext|>
    assert "trainer.use_v1=true" in answer["missing_step_error"]


def test_agent_loop_masks_windows_and_tails(opd_settings, verl_answers):
    s = _run(opd_settings, "opd_window", tail=None)
    a, b = s["window"]
    r = _ok(verl_answers["window"])["results"]
    assert all(x["max_tokens"] == b and x["response_mask"] == [0] * a + [1] * (b - a) for x in r)
    tail = _run(opd_settings, "opd_window", window=None)
    r = _ok(verl_answers["tail"])["results"][0]
    n, w = TAIL_RESPONSE, tail["tail"]
    assert r["max_tokens"] == tail["training"]["l_max"] and r["response_mask"] == [0] * (n - w) + [1] * w
    prefix = _run(opd_settings, "opd_prefix")
    r = _ok(verl_answers["prefix"])["results"]
    assert all(x["max_tokens"] == prefix["l_train"] == x["n_response"] for x in r)


# ---------------------------------------------------------------------------------------------- (c') loss scale

_GEN = torch.Generator().manual_seed(0)
_LOGP = {"samp": -torch.rand(4, 6, generator=_GEN, dtype=torch.float64),
         "teacher": -torch.rand(4, 6, generator=_GEN, dtype=torch.float64)}
_MASK = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0]])
LOSS_BATCHES = {
    name: {"k1": (_LOGP["samp"] - _LOGP["teacher"]).tolist(), "mask": mask.tolist()}
    for name, mask in (("loss_full", _MASK), ("loss_window", _MASK * torch.tensor([0, 0, 0, 1, 1, 0]).bool()))
}


def test_verl_loss_has_the_native_scale(verl_answers):
    """verl's aggregated distillation loss equals the native engine's Eq. 1 loss (token sums over rollouts,
    divided by the rollouts) on the same batch at importance ratio 1; with a rollout whose window mask is
    empty, verl averages over the rollouts that have loss tokens."""
    from prefix_opd.losses import opd_loss

    for key, batch in LOSS_BATCHES.items():
        mask = torch.tensor(batch["mask"])
        native, _ = opd_loss(_LOGP["samp"], _LOGP["samp"], _LOGP["teacher"], mask, 0.0, float(mask.shape[0]))
        in_loss = int((mask.sum(-1) > 0).sum())
        verl = _ok(verl_answers[key])["loss"]
        assert verl == pytest.approx(float(native) * mask.shape[0] / in_loss, rel=1e-9), key
    assert int((torch.tensor(LOSS_BATCHES["loss_window"]["mask"]).sum(-1) == 0).sum()) >= 1  # empty rows


# ---------------------------------------------------------------------------------------------- (d) metrics


SHAPE_S = flops.ModelShape(hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16, intermediate=256, vocab=80)
SHAPE_T = flops.ModelShape(hidden=96, layers=3, heads=4, kv_heads=2, head_dim=24, intermediate=384, vocab=80)


def test_metrics_from_verl_file_log_with_exact_lengths(opd_settings):
    s = _run(opd_settings, "opd_schedule")
    n = s["training"]["batch_prompts"] * s["training"]["samples_per_prompt"]
    lines = [json.dumps({"step": k, "data": {"actor/distillation/loss": 2.0 * k, "timing_s/step": 1.5,
                                             "response_length/mean": 9.0, "prompt_length/mean": 20.0,
                                             "perf/throughput": 123.0}}) for k in (1, 2, 3)]
    lengths = {k: [(20, k * 4, k * 4)] * n for k in (1, 2, 3)}
    rows = verl_data.metrics_from_verl(lines, s, SHAPE_S, SHAPE_T, lengths=lengths)
    assert [list(r) for r in rows] == [METRIC_COLUMNS] * 3
    cum = 0.0
    for r in rows:
        k = r["step"]
        assert r["flops"] == pytest.approx(flops.opd_step_flops(SHAPE_S, SHAPE_T, [4 * k] * n))  # response only
        assert r["flops_with_prompt"] == pytest.approx(flops.opd_step_flops(SHAPE_S, SHAPE_T, [20 + 4 * k] * n))
        cum += r["flops"]
        assert r["flops_cum"] == pytest.approx(cum) and r["seconds_cum"] == pytest.approx(1.5 * k)
        expected = length_at(s["schedule"], k - 1, s["training"]["l_max"])
        assert r["l_train"] == expected == generation_length(rollout_spec(RunSpec.from_settings(s)), k - 1)
        assert r["rollouts"] == n and r["response_tokens"] == 4 * k * n and r["prompt_tokens"] == 20 * n
        assert r["kl_mean"] == pytest.approx(2.0 * k * n / (4 * k * n)) and r["diag_flops"] == 0.0


def test_metrics_from_verl_console_lines_and_means(opd_settings, tmp_path):
    s = _run(opd_settings, "opd")
    n = s["training"]["batch_prompts"] * s["training"]["samples_per_prompt"]
    text = ("(TaskRunner pid=1) step:1 - actor/distillation/loss:np.float64(64.0) - response_length/mean:8.0"
            " - prompt_length/mean:np.float64(24.0) - timing_s/step:2.5 - training/epoch:0\n"
            "some other line\n")
    path = tmp_path / "console.log"
    path.write_text(text)
    (row,) = verl_data.metrics_from_verl(path, s, SHAPE_S, SHAPE_T)
    assert row["step"] == 1 and row["loss"] == 64.0 and row["seconds"] == 2.5
    assert row["response_tokens"] == 8 * n and row["prompt_tokens"] == 24 * n
    assert row["kl_mean"] == pytest.approx(64.0 * n / (8 * n))  # per-rollout loss x rollouts / tokens
    assert row["flops"] == pytest.approx(flops.opd_step_flops(SHAPE_S, SHAPE_T, [8] * n))
    assert row["flops_with_prompt"] == pytest.approx(flops.opd_step_flops(SHAPE_S, SHAPE_T, [32] * n))
    window = _run(opd_settings, "opd_window", tail=None)
    (row,) = verl_data.metrics_from_verl(path, window, SHAPE_S, SHAPE_T)
    assert math.isnan(row["kl_mean"])  # loss tokens unknown without the agent loop's lengths file


# ---------------------------------------------------------------------------------------------- (e) launch


def test_launch_scripts(parquet, tmp_path):
    s, prepared = parquet["settings"], parquet["prepared"]
    argv = verl_launch.command(s, prepared, GPUS_PER_NODE, NNODES, python="/venv/bin/python")
    assert argv[:3] == ["/venv/bin/python", "-m", "verl.trainer.main_ppo"]
    assert f"data.max_prompt_length={prepared['max_prompt_length']}" in argv
    env = verl_launch.environment(prepared)
    assert env["VERL_FILE_LOGGER_PATH"] == prepared["metrics"]
    agent_yaml = yaml.safe_load(Path(prepared["agent_loops"]).read_text())
    assert agent_yaml[0]["_target_"] == verl_schedule.AGENT_LOOP_TARGET
    assert json.loads(agent_yaml[0]["spec"])["lengths_log"] == prepared["lengths"]
    scripts = {"local": verl_launch.local_script(argv, env),
               "slurm": verl_launch.slurm_script(argv, env, NNODES, GPUS_PER_NODE, ray="/venv/bin/ray",
                                                 python="/venv/bin/python")}
    for name, text in scripts.items():
        path = tmp_path / f"{name}.sh"
        path.write_text(text)
        check = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert check.returncode == 0, (name, check.stderr)
    slurm = scripts["slurm"]
    assert f"#SBATCH --nodes={NNODES}" in slurm and f"#SBATCH --gpus-per-node={GPUS_PER_NODE}" in slurm
    assert "ray start --head" in slurm and 'ray start --address "$RAY_ADDRESS"' in slurm
    assert 'srun --overlap --nodes=1 --ntasks=1 -w "$HEAD"' in slurm and "verl.trainer.main_ppo" in slurm
    assert "exec /venv/bin/python -m verl.trainer.main_ppo" in scripts["local"]
