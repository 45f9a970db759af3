"""Per-step generation length and loss-window mask for the verl backend, applied by a custom agent loop.

verl fixes the rollout length per run (`data.max_response_length`), so the scheduled prefix
(`opd_schedule`) and the Table 3 windows (`opd_window`) need a hook inside verl's rollout. verl 0.9.1's
agent loops are that hook: every rollout runs through an `AgentLoopBase.run(sampling_params, **kwargs)`,
the vLLM/SGLang servers honour `sampling_params["max_tokens"]` (capped at `rollout.response_length`),
and the returned `response_mask` is the mask verl's distillation loss uses (`data["response_mask"]` in
`verl.trainer.distillation.losses.distillation_loss`). With `trainer.use_v1=true` and
`trainer.v1.trainer_mode=sync` (pinned by `verl_overrides`), each prompt's kwargs carry `global_steps`,
the 1-based step being trained (`trainer_base._add_batch_to_generate`), so the loop can compute
L_train(step) with `prefix_opd.methods.generation_length`, the native engine's own.

`PrefixOPDAgentLoop` (registered under the name :data:`AGENT_LOOP_NAME` by the YAML that
:func:`write_agent_loop_config` writes and `actor_rollout_ref.rollout.agent.agent_loop_config_path`
points at) is used for every OPD method, and also renders the prompt itself: the chat template with the
generation prompt, then `<think>` (`prefix_opd.models.encode_prompt`, the native engine's own), so prompts
are token for token those of the native engine. Per rollout it
  * sets `max_tokens` = :func:`max_tokens_at` (L_train for opd_prefix, L_train(step) for opd_schedule,
    the window's end for opd_window [a, b), L_max otherwise) and `stop_token_ids` = the end-of-turn and
    end-of-text ids (`prefix_opd.models.stop_token_ids`, the native engine's stops);
  * returns `response_mask` = :func:`loss_mask` (1 inside [a, b) or on the last W tokens for opd_window,
    1 everywhere otherwise; `prefix_opd.methods.loss_mask`, as the native engine);
  * sets `reward_score = 0` so verl's reward loop is skipped (task rewards are off);
  * optionally appends `{"step", "prompt", "response", "loss_tokens"}` to a JSONL file, from which
    `verl_data.metrics_from_verl` counts exact FLOPs.

What is tested here (CPU, no GPU): the pure functions below against the native engine, and the agent
loop itself instantiated the way verl does it (Hydra `_target_` from the YAML) with a fake LLM server.
What is not: a full verl training step (needs GPUs and vLLM). Known limit of verl 0.9.1 for windows:
`compute_distillation_loss_range` takes min/max over the masked tokens of each micro-batch and fails on
a micro-batch whose masks are all zero, which a window starting beyond most responses can produce.

The class is built lazily (module `__getattr__`), so this module imports without verl installed.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import torch

from .. import methods
from ..runs import RunSpec

AGENT_LOOP_NAME = "prefix_opd"
AGENT_LOOP_TARGET = f"{__name__}.PrefixOPDAgentLoop"


def rollout_spec(settings: dict[str, Any], lengths_log: str | None = None) -> dict[str, Any]:
    """What the agent loop needs from a run's settings (plain JSON data): `methods.rollout_spec`, and where to log
    the rollouts' lengths."""
    return methods.rollout_spec(RunSpec.from_settings(settings)) | {"lengths_log": lengths_log}


def max_tokens_at(spec: dict[str, Any], step: int) -> int:
    """New tokens the sampler may generate at 0-based `step` (the native engine's `methods.generation_length`)."""
    return methods.generation_length(spec, step)


def loss_mask(spec: dict[str, Any], n_tokens: int) -> list[int]:
    """The response mask of one rollout of `n_tokens` tokens (the native engine's `methods.loss_mask`)."""
    return methods.loss_mask(spec, torch.ones(1, n_tokens, dtype=torch.long))[0].tolist()


def agent_loop_config(settings: dict[str, Any], lengths_log: str | None = None) -> list[dict[str, Any]]:
    """The agent-loop registry entries verl loads from `rollout.agent.agent_loop_config_path`."""
    return [{"name": AGENT_LOOP_NAME, "_target_": AGENT_LOOP_TARGET,
             "spec": json.dumps(rollout_spec(settings, lengths_log), sort_keys=True)}]


def write_agent_loop_config(settings: dict[str, Any], path: str | Path, lengths_log: str | None = None) -> Path:
    """Write :func:`agent_loop_config` as YAML (JSON is YAML) to `path`; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(agent_loop_config(settings, lengths_log), indent=2) + "\n")
    return path


def _build_agent_loop_class() -> type:
    from uuid import uuid4

    from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput
    from verl.utils.profiler import simple_timer

    from ..models import encode_prompt, stop_token_ids

    class PrefixOPDAgentLoop(AgentLoopBase):
        """Single-turn rollout with a per-step `max_tokens` and a loss-window `response_mask`."""

        def __init__(self, *args: Any, spec: str | dict[str, Any], **kwargs: Any) -> None:
            kwargs.pop("name", None)  # the registry entry's own name, passed along by hydra.instantiate
            super().__init__(*args, **kwargs)
            self.spec = json.loads(spec) if isinstance(spec, str) else dict(spec)
            self.stop_ids = stop_token_ids(self.tokenizer)
            self.prompt_length = int(self.rollout_config.prompt_length)
            self.response_length = int(self.rollout_config.response_length)

        async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
            if "global_steps" not in kwargs:
                raise RuntimeError("PrefixOPDAgentLoop needs the step of each prompt (kwargs['global_steps']); "
                                   "run verl with trainer.use_v1=true and trainer.v1.trainer_mode=sync")
            step = int(kwargs["global_steps"]) - 1
            messages = list(kwargs["raw_prompt"])
            prompt_ids = await asyncio.get_running_loop().run_in_executor(None, encode_prompt, self.tokenizer,
                                                                           messages)
            if len(prompt_ids) > self.prompt_length:
                raise ValueError(f"prompt of {len(prompt_ids)} tokens exceeds data.max_prompt_length = "
                                 f"{self.prompt_length}; raise it")
            params = dict(sampling_params)
            params["max_tokens"] = min(max_tokens_at(self.spec, step), self.response_length)
            # end of turn as the native engine stops (a Base student's generation config lists only <|endoftext|>)
            params["stop_token_ids"] = sorted(set(params.get("stop_token_ids") or []) | set(self.stop_ids))
            metrics: dict[str, Any] = {}
            with simple_timer("generate_sequences", metrics):
                out = await self.server_manager.generate(request_id=uuid4().hex, prompt_ids=prompt_ids,
                                                         sampling_params=params)
            response_ids = list(out.token_ids)[: params["max_tokens"]]
            mask = loss_mask(self.spec, len(response_ids))
            logprobs = list(out.log_probs)[: len(response_ids)] if out.log_probs else None
            metrics["num_preempted"] = out.num_preempted if out.num_preempted is not None else -1
            if self.spec.get("lengths_log"):
                line = json.dumps({"step": step + 1, "prompt": len(prompt_ids), "response": len(response_ids),
                                   "loss_tokens": int(sum(mask))})
                with open(self.spec["lengths_log"], "a") as f:
                    f.write(line + "\n")
            extra = dict(out.extra_fields)
            extra.update({"turn_scores": [], "tool_rewards": [], "reward_extra_info": {}})
            return AgentLoopOutput(prompt_ids=prompt_ids, response_ids=response_ids, response_mask=mask,
                                   response_logprobs=logprobs, reward_score=0.0, num_turns=2, metrics=metrics,
                                   extra_fields=extra)

    PrefixOPDAgentLoop.__module__ = __name__
    PrefixOPDAgentLoop.__qualname__ = "PrefixOPDAgentLoop"
    return PrefixOPDAgentLoop


_CLASSES: dict[str, type] = {}


def __getattr__(name: str) -> Any:
    if name == "PrefixOPDAgentLoop":
        if name not in _CLASSES:
            _CLASSES[name] = _build_agent_loop_class()
        return _CLASSES[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
