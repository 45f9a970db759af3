"""Hydra overrides of verl 0.9.1's `ppo_trainer` config that run one OPD run from its `run.yaml` settings.

Every key below was read from the installed verl 0.9.1 (`verl/trainer/config/ppo_trainer.yaml` and the
files it includes: `distillation/distillation.yaml`, `algorithm/rollout_correction.yaml`,
`actor/{actor,dp_actor}.yaml`, `rollout/rollout.yaml`, `data/legacy_data.yaml`, `optim/fsdp.yaml`) and
from the code that reads it (`verl/trainer/distillation/losses.py`, `verl/workers/config/distillation.py`,
`verl/trainer/ppo/core_algos.py`, `verl/trainer/ppo/v1/trainer_base.py`); `tests/test_verl_backend.py`
composes them against that schema and instantiates verl's dataclasses from the result.

The loss, exactly (verl 0.9.1). `distillation.distillation_loss.loss_mode=k1` gives the per-token
`k1_t = log pi_theta(y_t) - log pi_T(y_t)`; with `use_policy_gradient=true` verl calls the policy loss
named by `distillation_loss.policy_loss_mode` (only `vanilla`, PPO-clip, is accepted by
`DistillationLossConfig`) with advantages `-k1_t` (detached), `old_log_prob` = the sampler's log-probs
(`algorithm.rollout_correction.bypass_mode=true`: `old_log_probs = rollout_log_probs`) and the clip
range of `distillation_loss.clip_ratio_low/high`. Tinker's unclipped importance-sampling loss
(docs/design.md section 4) is obtained by opening that range (`clip_ratio_low=1`, `clip_ratio_high=1e9`: the
ratio is clamped to [0, 1e9], i.e. not at all); the dual-clip constant `clip_ratio_c = 3` is a
hard-coded default of `compute_policy_loss_vanilla` that no distillation key reaches (for a negative
advantage and ratio > 3 the token's gradient is dropped). With one optimiser step per batch
(`ppo_mini_batch_size = train_batch_size`, `ppo_epochs=1`) the ratio is 1 up to sampler/trainer
numerics, so neither clip matters in practice. `algorithm.rollout_correction.loss_type=reinforce` is
pinned as the design asks, but in verl 0.9.1 it is read only by the `bypass_mode` *policy* loss, which
the v1 trainer never selects and the distillation loss never calls: it has no effect on this objective.
`actor.loss_agg_mode=seq-mean-token-sum` sums each rollout's token losses (the paper "sums the token-level
losses over the sequence length") and averages over the global batch's rollouts: the native engine's
normalisation (docs/design.md section 4), so `optim.clip_grad` sees the same gradient scale on both engines
(a token sum over 2,048 rollouts would be clipped ~2,000x harder). verl leaves rollouts whose loss mask is
empty out of that mean (only possible for opd_window); the native engine counts them.

Not expressible in verl 0.9.1 (refused with an error, never silently changed):
  * a KL discount gamma != 0: verl's distillation advantages are per token (`-k1_t`); `algorithm.gamma`
    discounts task rewards in GAE, not the distillation term;
  * the methods in :data:`UNSUPPORTED_METHODS`.

GPUs: verl puts the teacher in its own Ray resource pool (`distillation.nnodes` x
`distillation.n_gpus_per_node`) beside the trainer's (`trainer.nnodes` x `trainer.n_gpus_per_node`), so
each node's GPUs are split: `teacher_gpus_per_node` (default half) serve the teacher, the rest train the
student and host its vLLM rollout (hybrid engine). One GPU is therefore not enough.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from ..runs import ConfigError, RunSpec, training_seed

UNSUPPORTED_METHODS: dict[str, str] = {
    "gkd": "prefix GKD needs the full-vocabulary forward/reverse KL, which is not among verl 0.9.1's distillation "
           "losses (k1..k3 estimators on sampled tokens, forward_kl_topk); run it on the native backend",
    "seqkd": "SeqKD is SFT on off-policy teacher responses, not an RL rollout; verl's SFT trainer is not wired "
             "to this pipeline: run it on the native backend",
    "seqkd_prefix": "prefix SeqKD is SFT on truncated off-policy responses; verl's SFT trainer is not wired to "
                    "this pipeline: run it on the native backend",
}
"""Methods `training.backend: verl` cannot run, with the reason (read by `prefix_opd.validate`)."""

RUN_NATIVELY: dict[str, str] = {
    "opd_window": "verl 0.9.1's distillation loss logs the min/max loss over a micro-batch's loss tokens "
                  "(`compute_distillation_loss_range`) and fails on a micro-batch whose loss masks are all empty, "
                  "which a window starting beyond short responses produces; the window runs train natively "
                  "(their overrides and agent-loop masks compose, and are tested, for a verl that handles it)",
}
"""Methods verl can express but the workflow routes to the native engine, with the reason."""

VERL_METHODS = ("opd", "opd_prefix", "opd_schedule", "opd_window")
TEACHER_NAME = "teacher_model"  # verl's single-teacher entry (distillation.teacher_models.teacher_model)
UNCLIPPED_RATIO_HIGH = 1.0e9
LOSS_AGG_MODE = "seq-mean-token-sum"  # token sums per rollout, averaged over rollouts: the native Eq. 1 scale
SRC_DIR = Path(__file__).resolve().parents[2]  # .../src, put on the Ray workers' PYTHONPATH


def backend_for(settings: dict[str, Any]) -> str:
    """The engine that runs this run: verl for the OPD methods when `training.backend` is verl, the native
    engine for the methods verl cannot run (:data:`UNSUPPORTED_METHODS`) or cannot run safely
    (:data:`RUN_NATIVELY`), and whenever the backend is native.

    The workflow routes each run with it (the training script, and the GPUs the train rule asks for).
    """
    method = settings["method"]
    if settings["training"].get("backend") == "verl" and method not in UNSUPPORTED_METHODS | RUN_NATIVELY:
        return "verl"
    return "native"


def max_response_length(settings: dict[str, Any]) -> int:
    """`data.max_response_length`: the run's longest generation (`methods.max_generation_length`); the schedule
    keeps L_max here, its per-step length is the agent loop's `max_tokens`."""
    from .. import methods

    return methods.max_generation_length(methods.rollout_spec(RunSpec.from_settings(settings)))


def max_token_len_per_gpu(max_prompt_length: int, max_response_length: int) -> int:
    """`actor.ppo_max_token_len_per_gpu` (dynamic micro-batches): room for one full sequence, prompt + response,
    and no more. The student's logits of a micro-batch are tokens x vocab: at the paper's 1,024 + 16,384 tokens
    and Qwen3's 151,936-token vocabulary that is 2.6e9 values, 5.3 GB in bf16 (10.6 GB if upcast to fp32 for
    the log-softmax), beside the FSDP shard of an 8B student; the native engine's `micro_batch_tokens` (65,536
    in paper.yaml) would be 20 GB of bf16 logits, so it is not used here."""
    return int(max_prompt_length) + int(max_response_length)


def _local_path(p: str) -> str:
    """Absolute path for a local model folder (Ray workers do not share our working directory); a hub id
    such as `Qwen/Qwen3-8B` that is not a local folder stays as it is."""
    return os.path.abspath(p) if os.path.exists(p) else p


def split_gpus(n_gpus_per_node: int, teacher_gpus_per_node: int | None = None) -> tuple[int, int]:
    """(trainer, teacher) GPUs per node."""
    teacher = max(1, n_gpus_per_node // 2) if teacher_gpus_per_node is None else int(teacher_gpus_per_node)
    trainer = n_gpus_per_node - teacher
    if teacher < 1 or trainer < 1:
        raise ConfigError(f"verl backend: {n_gpus_per_node} GPU(s) per node cannot hold both the student "
                          f"(trainer + rollout) and the teacher ({teacher} requested); verl gives the teacher its "
                          "own resource pool, so give at least 2 GPUs per node")
    return trainer, teacher


def check_settings(settings: dict[str, Any]) -> None:
    """Refuse what verl cannot run as specified, with the key and the fix."""
    method = settings["method"]
    if method in UNSUPPORTED_METHODS:
        raise ConfigError(f"training.backend: verl cannot run '{method}' (run {settings['name']}): "
                          f"{UNSUPPORTED_METHODS[method]}")
    if method not in VERL_METHODS:
        raise ConfigError(f"training.backend: unknown method '{method}' for verl")
    gamma = float(settings["training"].get("gamma") or 0.0)
    if gamma != 0.0:
        raise ConfigError(f"training.gamma = {gamma}: verl 0.9.1's distillation advantages are per token "
                          "(-k1_t, no discount); set training.gamma: 0 or use training.backend: native")


def _value(v: Any) -> str:
    """A Hydra override value: null/true/false, numbers, lists, and strings quoted when needed."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isinf(v) or math.isnan(v):
            raise ValueError(f"no Hydra value for {v}")
        return repr(v)
    if isinstance(v, list | tuple):
        return "[" + ",".join(_value(x) for x in v) + "]"
    s = str(v)
    if s and all(c.isalnum() or c in "_-./+@" for c in s) and s not in ("null", "true", "false"):
        return s
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def distillation_loss_keys() -> dict[str, Any]:
    """Every key of `distillation.distillation_loss` in verl 0.9.1's YAML, pinned (YAML and dataclass
    defaults differ: e.g. use_policy_gradient false vs true, topk 32 vs 128, loss_max_clamp null vs 10)."""
    return {"loss_mode": "k1", "topk": None, "use_task_rewards": False, "distillation_loss_coef": 1.0,
            "loss_max_clamp": None, "log_prob_min_clamp": None, "use_policy_gradient": True,
            "policy_loss_mode": "vanilla", "clip_ratio": UNCLIPPED_RATIO_HIGH, "clip_ratio_low": 1.0,
            "clip_ratio_high": UNCLIPPED_RATIO_HIGH}


def override_dict(settings: dict[str, Any], train_parquet: str, val_parquet: str, out_dir: str,
                  n_gpus_per_node: int, nnodes: int, *, teacher_gpus_per_node: int | None = None,
                  max_prompt_length: int = 1024, agent_loop_config: str | None = None,
                  src_dir: str | None = None) -> dict[str, Any]:
    """The overrides as an ordered {dotted key: value} dict (see :func:`build_overrides`)."""
    check_settings(settings)
    t = settings["training"]
    trainer_gpus, teacher_gpus = split_gpus(n_gpus_per_node, teacher_gpus_per_node)
    rollouts = int(t["batch_prompts"]) * int(t["samples_per_prompt"])
    if rollouts % (trainer_gpus * nnodes):
        raise ConfigError(f"training.batch_prompts x samples_per_prompt = {rollouts} rollouts do not split evenly "
                          f"over {trainer_gpus * nnodes} trainer GPUs ({nnodes} node(s) x {trainer_gpus}); change "
                          "the batch or teacher_gpus_per_node")
    response_len = max_response_length(settings)
    dtype = str(t.get("dtype") or "bfloat16")
    out = Path(os.path.abspath(out_dir))
    agent_yaml = os.path.abspath(agent_loop_config) if agent_loop_config else str(out / "agent_loops.yaml")
    o: dict[str, Any] = {
        # data: our parquet already holds steps x batch_prompts rows in the native engine's order
        "data.train_files": os.path.abspath(train_parquet), "data.val_files": os.path.abspath(val_parquet),
        "data.prompt_key": "prompt",
        "data.max_prompt_length": int(max_prompt_length), "data.max_response_length": response_len,
        "data.train_batch_size": int(t["batch_prompts"]), "data.shuffle": False,
        "data.filter_overlong_prompts": False, "data.truncation": "error", "data.seed": training_seed(settings),
        # student
        "actor_rollout_ref.model.path": _local_path(settings["student_path"]),
        "actor_rollout_ref.actor.optim.lr": float(settings["lr"]),
        "actor_rollout_ref.actor.optim.weight_decay": float(t["weight_decay"]),
        "actor_rollout_ref.actor.optim.betas": [float(b) for b in t["betas"]],
        "actor_rollout_ref.actor.optim.clip_grad": float(t["grad_clip"] or 0.0),
        "actor_rollout_ref.actor.grad_clip": float(t["grad_clip"] or 0.0),
        "actor_rollout_ref.actor.optim.lr_warmup_steps_ratio": 0.0,
        "actor_rollout_ref.actor.optim.lr_scheduler_type": "constant",
        "actor_rollout_ref.actor.ppo_mini_batch_size": int(t["batch_prompts"]),
        "actor_rollout_ref.actor.ppo_epochs": 1, "actor_rollout_ref.actor.shuffle": False,
        "actor_rollout_ref.actor.use_dynamic_bsz": True,
        "actor_rollout_ref.actor.ppo_max_token_len_per_gpu": max_token_len_per_gpu(int(max_prompt_length),
                                                                                   response_len),
        "actor_rollout_ref.actor.loss_agg_mode": LOSS_AGG_MODE,
        "actor_rollout_ref.actor.use_kl_loss": False, "actor_rollout_ref.actor.entropy_coeff": 0.0,
        "actor_rollout_ref.actor.checkpoint.save_contents": ["model", "optimizer", "extra", "hf_model"],
        # compute dtype of the student's FSDP forward/backward (master weights stay fp32: fsdp_config.model_dtype)
        # and of the vLLM engines (the teacher's `inference.dtype` follows `rollout.dtype`)
        "actor_rollout_ref.actor.fsdp_config.dtype": dtype,
        # student rollout: K samples per prompt at temperature 1, with the sampler's log-probs
        "actor_rollout_ref.rollout.name": "vllm", "actor_rollout_ref.rollout.n": int(t["samples_per_prompt"]),
        "actor_rollout_ref.rollout.temperature": 1.0, "actor_rollout_ref.rollout.top_p": 1.0,
        "actor_rollout_ref.rollout.top_k": -1, "actor_rollout_ref.rollout.calculate_log_probs": True,
        "actor_rollout_ref.rollout.tensor_model_parallel_size": 1, "actor_rollout_ref.rollout.dtype": dtype,
        "actor_rollout_ref.rollout.seed": training_seed(settings),
        "actor_rollout_ref.rollout.agent.default_agent_loop": "prefix_opd",
        "actor_rollout_ref.rollout.agent.agent_loop_config_path": agent_yaml,
        # no critic, no reference model, no task reward
        "algorithm.adv_estimator": "grpo", "algorithm.use_kl_in_reward": False, "critic.enable": False,
        "algorithm.rollout_correction.bypass_mode": True,
        "algorithm.rollout_correction.loss_type": "reinforce",
        "algorithm.rollout_correction.rollout_is": None, "algorithm.rollout_correction.rollout_rs": None,
        # on-policy distillation
        "distillation.enabled": True, "distillation.nnodes": int(nnodes),
        "distillation.n_gpus_per_node": teacher_gpus,
        f"distillation.teacher_models.{TEACHER_NAME}.model_path": _local_path(settings["teacher_path"]),
        f"distillation.teacher_models.{TEACHER_NAME}.inference.tensor_model_parallel_size": 1,
    }
    o.update({f"distillation.distillation_loss.{k}": v for k, v in distillation_loss_keys().items()})
    o.update({
        "trainer.nnodes": int(nnodes), "trainer.n_gpus_per_node": trainer_gpus,
        "trainer.total_epochs": 1, "trainer.total_training_steps": int(settings["steps"]),
        "trainer.save_freq": int(settings["save_every"]), "trainer.max_actor_ckpt_to_keep": None,
        "trainer.test_freq": -1, "trainer.val_before_train": False,
        "trainer.logger": ["console", "file"], "trainer.project_name": "prefix_opd",
        "trainer.experiment_name": settings["name"], "trainer.default_local_dir": str(out / "checkpoints"),
        "trainer.resume_mode": "auto", "trainer.use_v1": True, "trainer.v1.trainer_mode": "sync",
        "+ray_kwargs.ray_init.runtime_env.env_vars.PYTHONPATH": str(src_dir or SRC_DIR),
    })
    return o


def build_overrides(settings: dict[str, Any], train_parquet: str, val_parquet: str, out_dir: str,
                    n_gpus_per_node: int, nnodes: int, **kw: Any) -> list[str]:
    """Hydra override strings (`key=value`) for `python -m verl.trainer.main_ppo` (config `ppo_trainer`).

    `n_gpus_per_node` x `nnodes` is the whole allocation; see :func:`split_gpus`. Keyword options:
    `teacher_gpus_per_node`, `max_prompt_length` (default 1024; `verl_launch.prepare` measures it),
    `agent_loop_config` (default `<out_dir>/agent_loops.yaml`), `src_dir` (this package's parent folder).
    """
    return [f"{k}={_value(v)}" for k, v in override_dict(settings, train_parquet, val_parquet, out_dir,
                                                        n_gpus_per_node, nnodes, **kw).items()]
