"""Helper run by `.venv-verl/bin/python` for tests/test_verl_backend.py (verl cannot share the main venv).

Reads one JSON job on stdin, prints one JSON answer on stdout (last line). Jobs:
  {"mode": "compose", "runs": {name: [override, ...]}}
      compose verl 0.9.1's `ppo_trainer` with each run's overrides (Hydra, verl's own config folder),
      resolve it, and answer per run: every override key's resolved value, the resolved `distillation`
      section, unresolvable keys, and what verl's dataclasses say when built from it (DistillationConfig
      runs its teacher-pool checks; ActorConfig, RolloutConfig, AlgoConfig; `validate_config`).
  {"mode": "agent_loop", "overrides": [...], "agent_loops": path, "prompt": str, "steps": [1-based...]}
      register the agent loops from the YAML the way verl's AgentLoopWorker does, instantiate the default
      one with hydra like verl does, with the toy tokenizer and a fake LLM server, and run it per step.
  {"mode": "dataset", "overrides": [...], "parquet": path, "n": int}
      load the parquet with verl's RLHFDataset and return the first n items.
  {"mode": "batch", "jobs": {key: job, ...}}
      all of the above in one process (verl's imports take ~10 s); answers by key.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import traceback


def _config_dir() -> str:
    import verl

    return os.path.join(os.path.dirname(verl.__file__), "trainer", "config")


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=_config_dir(), version_base=None):
        return compose("ppo_trainer", overrides=overrides)


def _plain(x):
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(x, DictConfig | ListConfig):
        return OmegaConf.to_container(x, resolve=True)
    return x


def compose_run(overrides: list[str]) -> dict:
    from omegaconf import OmegaConf
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    cfg = _compose(overrides)
    out: dict = {"values": {}, "unresolved": [], "dataclass_errors": {}}
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+")
        try:
            out["values"][key] = _plain(OmegaConf.select(cfg, key, throw_on_missing=True, default="<absent>"))
        except Exception as e:  # noqa: BLE001
            out["unresolved"].append(f"{key}: {type(e).__name__}: {e}")
    out["distillation"] = OmegaConf.to_container(cfg.distillation, resolve=True)
    # resolve the whole tree (interpolations; '???' mandatory values are reported, not resolved)
    try:
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
        out["full_resolve"] = "ok"
    except Exception as e:  # noqa: BLE001
        out["full_resolve"] = f"{type(e).__name__}: {e}"
    checks = {
        "distillation": lambda: omega_conf_to_dataclass(cfg.distillation),
        "actor": lambda: omega_conf_to_dataclass(cfg.actor_rollout_ref.actor),
        "rollout": lambda: omega_conf_to_dataclass(cfg.actor_rollout_ref.rollout),
        "algorithm": lambda: omega_conf_to_dataclass(cfg.algorithm),
        "validate_config": lambda: validate_config(cfg, use_reference_policy=False, use_critic=False),
    }
    built = {}
    for name, fn in checks.items():
        try:
            built[name] = fn()
        except Exception as e:  # noqa: BLE001
            out["dataclass_errors"][name] = f"{type(e).__name__}: {e}"
    d = built.get("distillation")
    if d is not None:
        (key, teacher), = d.teacher_models.items()
        loss = d.distillation_loss
        out["distillation_dataclass"] = {
            "teacher_key": key, "teacher_model_path": teacher.model_path, "num_replicas": teacher.num_replicas,
            "loss_mode": loss.loss_mode, "use_policy_gradient": loss.use_policy_gradient,
            "use_task_rewards": loss.use_task_rewards, "loss_max_clamp": loss.loss_max_clamp,
            "log_prob_min_clamp": loss.log_prob_min_clamp, "policy_loss_mode": loss.policy_loss_mode,
            "clip_ratio_low": loss.clip_ratio_low, "clip_ratio_high": loss.clip_ratio_high,
            "use_estimator": loss.loss_settings.use_estimator, "use_topk": loss.loss_settings.use_topk,
        }
    a = built.get("algorithm")
    if a is not None:
        rc = a.rollout_correction  # a plain mapping in AlgoConfig
        out["rollout_correction"] = {"bypass_mode": rc["bypass_mode"], "loss_type": rc["loss_type"]}
    return out


class FakeServer:
    """Stands in for verl's LLMServerClient: records sampling params, returns max_tokens tokens."""

    def __init__(self, token_id: int, n_tokens: int | None = None) -> None:
        self.calls: list[dict] = []
        self.token_id, self.n_tokens = token_id, n_tokens

    async def generate(self, request_id, *, prompt_ids, sampling_params, **kwargs):
        from verl.workers.rollout.replica import TokenOutput

        self.calls.append({"prompt_ids": list(prompt_ids), "sampling_params": dict(sampling_params)})
        n = sampling_params["max_tokens"] if self.n_tokens is None else self.n_tokens
        return TokenOutput(token_ids=[self.token_id] * n, log_probs=[-0.5] * n)


def agent_loop(job: dict) -> dict:
    import hydra
    from omegaconf import OmegaConf
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, _agent_loop_registry
    from verl.utils.dataset.rl_dataset import RLHFDataset
    from verl.utils.import_utils import resolve_config_path

    from prefix_opd.models import encode_prompt
    from prefix_opd.toy.tokenizer import build_tokenizer

    cfg = _compose(job["overrides"])
    path = cfg.actor_rollout_ref.rollout.agent.agent_loop_config_path
    assert path == job["agent_loops"], (path, job["agent_loops"])
    for entry in OmegaConf.load(resolve_config_path(path)):  # as AgentLoopWorker.__init__ does
        _agent_loop_registry[entry.name] = entry
    name = cfg.actor_rollout_ref.rollout.agent.default_agent_loop
    tokenizer = build_tokenizer()
    server = FakeServer(token_id=tokenizer.convert_tokens_to_ids(tokenizer.tokenize("1"))[0],
                        n_tokens=job.get("n_tokens"))
    loop = hydra.utils.instantiate(config=_agent_loop_registry[name], trainer_config=DictConfigWrap(config=cfg),
                                   server_manager=server, tokenizer=tokenizer, processor=None,
                                   hf_model_type="qwen3", dataset_cls=RLHFDataset,
                                   data_config=DictConfigWrap(cfg.data))
    results = []
    for step in job["steps"]:
        messages = [{"role": "user", "content": job["prompt"]}]
        out = asyncio.run(loop.run({"temperature": 1.0, "top_p": 1.0, "top_k": -1, "logprobs": True},
                                   raw_prompt=messages, global_steps=step, uid="u", session_id=0))
        call = server.calls[-1]
        results.append({"step": step, "max_tokens": call["sampling_params"]["max_tokens"],
                        "stop_token_ids": call["sampling_params"].get("stop_token_ids"),
                        "response_mask": out.response_mask, "n_response": len(out.response_ids),
                        "prompt_matches_native": out.prompt_ids == encode_prompt(tokenizer, job["prompt"]),
                        "reward_score": out.reward_score, "n_logprobs": len(out.response_logprobs or [])})
    missing_step = None
    try:
        asyncio.run(loop.run({}, raw_prompt=[{"role": "user", "content": job["prompt"]}]))
    except RuntimeError as e:
        missing_step = str(e)
    return {"agent_loop_class": type(loop).__module__ + "." + type(loop).__name__, "results": results,
            "missing_step_error": missing_step}


def dataset(job: dict) -> dict:
    from verl.utils.dataset.rl_dataset import RLHFDataset

    from prefix_opd.toy.tokenizer import build_tokenizer

    cfg = _compose(job["overrides"])
    ds = RLHFDataset(data_files=[job["parquet"]], tokenizer=build_tokenizer(), config=cfg.data)
    items = []
    for i in range(job["n"]):
        row = ds[i]
        items.append({"raw_prompt": [dict(m) for m in row["raw_prompt"]], "data_source": row["data_source"],
                      "index": int(row["index"]), "extra_info": dict(row["extra_info"])})
    return {"len": len(ds), "items": items}


def aggregate(job: dict) -> dict:
    """verl's own loss aggregation (`core_algos.agg_loss`, as its distillation loss calls it) of a token-loss
    matrix under the actor's `loss_agg_mode`."""
    import torch
    from verl.trainer.ppo.core_algos import agg_loss

    value = agg_loss(torch.tensor(job["loss_mat"], dtype=torch.float64), torch.tensor(job["mask"]),
                     job["loss_agg_mode"])
    return {"loss": float(value)}


def answer(job: dict) -> dict:
    try:
        if job["mode"] == "compose":
            return {name: compose_run(ov) for name, ov in job["runs"].items()}
        if job["mode"] == "agent_loop":
            return agent_loop(job)
        if job["mode"] == "dataset":
            return dataset(job)
        if job["mode"] == "aggregate":
            return aggregate(job)
        if job["mode"] == "batch":
            return {key: answer(sub) for key, sub in job["jobs"].items()}
        raise ValueError(f"unknown mode {job['mode']}")
    except Exception:  # noqa: BLE001
        return {"error": traceback.format_exc()}


def main() -> None:
    print(json.dumps(answer(json.loads(sys.stdin.read())), default=str))


if __name__ == "__main__":
    main()
