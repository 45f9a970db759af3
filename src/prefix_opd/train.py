"""The native training engine: OPD and its prefix, schedule and window variants, prefix GKD, SeqKD.

One call of `train(run, ...)` runs one run (`RunSpec.from_settings` of its `run.yaml`). Each step:
sample (or read) responses -> score them with the teacher -> one AdamW update on the masked loss ->
log a `metrics.csv` row. Resumable state lives in the run's work folder; checkpoints are published
into the declared output folder at the end (Snakemake deletes declared outputs before a job runs).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from tqdm import tqdm

from . import checkpointing, flops, losses, methods, paths, schedules, sharding
from .data import read_jsonl
from .models import Packed, encode_prompt, load_model, load_tokenizer, output_weight, response_hidden, stop_token_ids
from .runs import RunSpec
from .sampling import Rollouts, Sampler, local_sampler
from .sharding import Group

log = logging.getLogger(__name__)
T = TypeVar("T")


class TrainingError(RuntimeError):
    """A run that cannot go on (e.g. a non-finite loss); the last good checkpoint is kept."""


@dataclass
class StepResult:
    loss: float
    kl_sum: float
    kl_tokens: int
    prompt_tokens: int
    response_tokens: int
    rollouts: int
    seq_lens: list[int]  # prompt + response tokens of each rollout (the training pass's rows)
    response_lens: list[int]  # supervised (response) tokens of each rollout
    kl_bins: list[tuple[int, int, float, int]] = field(default_factory=list)
    kl_rows: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # (kl_BT, mask_BT) per micro-batch


def micro_batches(lengths: list[int], budget: int) -> Iterator[list[int]]:
    """Indices grouped (sorted by length) so that rows x longest row stays within `budget` tokens."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    group: list[int] = []
    for i in order:
        if group and (len(group) + 1) * lengths[i] > budget:
            yield group
            group = []
        group.append(i)
    if group:
        yield group


@functools.lru_cache(maxsize=4)
def epoch_permutation(seed: int, epoch: int, n: int) -> tuple[int, ...]:
    """The order of the `n` prompts in `epoch` (shuffled once per epoch, not once per prompt drawn)."""
    perm = list(range(n))
    random.Random(seed * 1_000_003 + epoch).shuffle(perm)
    return tuple(perm)


def _in_compute_dtype(method: Callable[..., T]) -> Callable[..., T]:
    """Run a `Trainer` method under the run's forward-pass precision (`Trainer.compute`)."""
    @functools.wraps(method)
    def wrapped(self: Trainer, *args: Any, **kwargs: Any) -> T:
        with self.compute():
            return method(self, *args, **kwargs)

    return wrapped


class Trainer:
    """Holds the student, the teacher, the data and the optimiser of one run (this rank's share of them: see
    sharding.py; `gradient_checkpointing` recomputes each layer's activations in the backward pass)."""

    def __init__(self, run: RunSpec, questions_path: str, offpolicy_path: str, threads: int,
                 device: str = "cpu", dev_path: str | None = None, gradient_checkpointing: bool = False,
                 group: Group | None = None) -> None:
        self.run, self.t = run, run.training
        self.method, self.spec = methods.method(run), methods.rollout_spec(run)
        self.group = group or Group(device=device)
        self.device = device = self.group.device
        torch.set_num_threads(threads)
        self.tokenizer = load_tokenizer(run.student_path)
        self.pad_id = self.tokenizer.pad_token_id
        self.stop_ids = stop_token_ids(self.tokenizer)
        self.seed = run.training_seed
        torch.manual_seed(self.seed)
        # The student's weights stay float32 (master weights: at bfloat16 an update of lr 5e-6 rounds away);
        # `training.dtype: bfloat16` computes in bfloat16 through autocast and keeps the frozen teacher in it.
        dtype = self.t["dtype"]
        self.student = load_model(run.student_path, dtype="float32", device="cpu" if self.group.sharded else device)
        self.student.train()
        if gradient_checkpointing:
            self.student.gradient_checkpointing_enable()
        self.call = sharding.shard(self.student, self.group)  # moves each rank's shard to its device
        self.autocast_dtype = torch.bfloat16 if dtype == "bfloat16" else None
        self.teacher = None
        if self.method.loss != "sft":
            self.teacher = load_model(run.teacher_path, dtype=dtype, device=device).eval()
        if self.teacher is not None:
            for p in self.teacher.parameters():
                p.requires_grad_(False)
        self.student_shape = flops.ModelShape.from_hf_config(self.student.config)
        self.teacher_shape = flops.ModelShape.from_hf_config(self.teacher.config) if self.teacher else None
        self.optimizer = torch.optim.AdamW(self.student.parameters(), lr=run.lr,
                                           betas=tuple(self.t["betas"]), weight_decay=self.t["weight_decay"])
        self.sampler: Sampler = local_sampler(self.t["sampler"], self.student, self.stop_ids, self.pad_id)
        source = offpolicy_path if self.method.offpolicy_data else questions_path
        self.records = read_jsonl(source)
        self.prompts = [encode_prompt(self.tokenizer, r["prompt"]) for r in self.records]
        self.dev_records = read_jsonl(dev_path) if dev_path else None  # the dev_plateau schedule's questions

    # ---------------------------------------------------------------- data
    def batch_indices(self, step: int) -> list[int]:
        """The prompts of 0-based `step`: consecutive slices of a per-epoch seeded permutation."""
        b, n = self.t["batch_prompts"], len(self.records)
        return [epoch_permutation(self.seed, epoch, n)[pos]
                for epoch, pos in (divmod(k, n) for k in range(step * b, step * b + b))]

    def offpolicy_responses(self, idx: list[int], limit: int | None) -> Rollouts:
        prompts, responses = [], []
        for i in idx:
            ids = self.tokenizer(self.records[i]["response"], add_special_tokens=False)["input_ids"]
            ids = ids + [self.stop_ids[0]]
            prompts.append(self.prompts[i])
            responses.append(ids[:limit] if limit else ids)
        return Rollouts(prompts, responses, [True] * len(idx))

    def compute(self) -> contextlib.AbstractContextManager:
        """The forward passes' precision: bfloat16 autocast for `training.dtype: bfloat16`, float32 otherwise."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(self.device).type, dtype=self.autocast_dtype)

    # ---------------------------------------------------------------- one step
    @_in_compute_dtype
    def step(self, step: int, length: int) -> StepResult:
        """One update on the prompts of 0-based `step`, generating up to `length` new tokens (on-policy methods)."""
        idx = self.batch_indices(step)
        seed = self.seed * 7919 + step
        n = self.t["samples_per_prompt"]
        if self.method.offpolicy_data or (self.method.loss == "gkd" and self.run.gkd_lambda == 0):
            # SeqKD's solutions (prefix SeqKD: cut at L, App. C), or off-policy GKD's dataset responses
            rollouts = self.offpolicy_responses(idx, self.run.l_train)
        else:
            self.sampler.update_weights(self.student)
            checkpointing.fault_point("sampling", step + 1)
            rollouts = self._sample_shared(idx, n, length, seed)
        # FSDP averages the ranks' gradients: each rank's loss over its rows, normalised by the batch's rollouts
        # per rank, averages to Eq. 1's per-rollout mean over the whole batch.
        normalizer = len(rollouts) / self.group.world
        result = StepResult(0.0, 0.0, 0, sum(map(len, rollouts.prompt_ids)),
                            sum(map(len, rollouts.response_ids)), len(rollouts),
                            [len(p) + len(r) for p, r in zip(rollouts.prompt_ids, rollouts.response_ids, strict=True)],
                            [len(r) for r in rollouts.response_ids])
        self.optimizer.zero_grad(set_to_none=True)
        kl_rows: list[tuple[torch.Tensor, torch.Tensor]] = []
        groups = list(micro_batches(result.seq_lens, self.t["micro_batch_tokens"]))
        for group, counted in sharding.share(groups, self.group):
            packed = Packed.build([rollouts.prompt_ids[i] for i in group],
                                  [rollouts.response_ids[i] for i in group], self.pad_id).to(self.device)
            samp = None
            if rollouts.sampler_logprobs is not None:
                samp = _pad([rollouts.sampler_logprobs[i] for i in group], packed.targets_BT.shape)
            loss, kl_BT = self._micro_step(packed, normalizer, samp)
            (loss if counted else loss * 0).backward()
            checkpointing.fault_point("update", step + 1)
            if not counted:
                continue
            result.loss += loss.item() / self.group.world
            mask = packed.response_mask_BT
            if kl_BT is not None:
                result.kl_sum += float(kl_BT[mask].sum())
                result.kl_tokens += int(mask.sum())
                kl_rows.append((kl_BT, mask))
        if self.group.sharded:  # every rank logs (and an adaptive schedule reads) the whole batch's figures
            result.loss, result.kl_sum, kl_tokens = sharding.all_sum(
                [result.loss, result.kl_sum, result.kl_tokens], self.group)
            result.kl_tokens = int(kl_tokens)
            kl_rows = [row for part in sharding.all_gather([(k.cpu(), m.cpu()) for k, m in kl_rows], self.group)
                       for row in part]
        if not torch.isfinite(torch.tensor(result.loss)):
            raise TrainingError(f"step {step + 1}: loss is {result.loss}")
        if self.t["grad_clip"]:
            torch.nn.utils.clip_grad_norm_(self.student.parameters(), self.t["grad_clip"])
        self.optimizer.step()
        result.kl_bins = _merge_bins(kl_rows, self.t["kl_bin"])
        result.kl_rows = kl_rows
        return result

    def _sample_shared(self, idx: list[int], n: int, length: int, seed: int) -> Rollouts:
        """`n` rollouts of each prompt of `idx`, every rank sampling its share of the prompts (with its own
        seed) and receiving all of them, in rank order."""
        mine = idx[self.group.rank::self.group.world]
        with self._gathered():
            part = self.sampler.sample([self.prompts[i] for i in mine], n, length, seed + 1_000_003 * self.group.rank)
        if not self.group.sharded:
            return part
        parts = sharding.all_gather(part, self.group)
        logprobs = [p.sampler_logprobs for p in parts]
        return Rollouts([r for p in parts for r in p.prompt_ids], [r for p in parts for r in p.response_ids],
                        [f for p in parts for f in p.finished],
                        None if any(lp is None for lp in logprobs) else [r for lp in logprobs for r in lp])

    def _sample_same(self, prompts: list[list[int]], n: int, length: int, seed: int) -> Rollouts:
        """Rollouts that every rank draws alike (the same prompts and seed: diagnostics and schedule signals)."""
        with self._gathered():
            return self.sampler.sample(prompts, n, length, seed)

    def _gathered(self) -> contextlib.AbstractContextManager:
        """The student's full weights for sampling (`generate` on the bare model; sharding.gathered)."""
        if self.group.sharded and self.t["sampler"] != "hf":
            raise TrainingError(f"training.sampler = {self.t['sampler']!r} cannot sample from a student sharded "
                                f"over {self.group.world} processes; set training.sampler: hf")
        return sharding.gathered(self.call, self.group)

    def _student(self, packed: Packed, head: Callable[[torch.Tensor, torch.Tensor], T]) -> T:
        """`head(hidden_BTH, output_weight)` on the student's final hidden states at the response positions."""
        return self.call(packed.input_ids_BL, packed.gather_BT, head)

    def _micro_step(self, packed: Packed, normalizer: float, samp_BT: torch.Tensor | None
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        mask_BT = methods.loss_mask(self.spec, packed.response_mask_BT)
        if self.method.loss == "sft":
            return self._student(packed, lambda hidden_BTH, weight: losses.sft_loss(
                losses.chunked_token_logprobs(hidden_BTH, weight, packed.targets_BT), mask_BT, normalizer)), None
        with torch.no_grad():
            teacher_hidden_BTH = response_hidden(self.teacher, packed)
        if self.method.loss == "gkd":
            return self._student(packed, lambda hidden_BTH, weight: losses.chunked_full_vocab_kl(
                hidden_BTH, weight, teacher_hidden_BTH, output_weight(self.teacher), mask_BT,
                float(self.run.gkd_beta), normalizer))
        logp_new_BT = self._student(packed, lambda hidden_BTH, weight: losses.chunked_token_logprobs(
            hidden_BTH, weight, packed.targets_BT))
        with torch.no_grad():
            logp_teacher_BT = losses.chunked_token_logprobs(teacher_hidden_BTH, output_weight(self.teacher),
                                                            packed.targets_BT)
        # The in-process sampler (hf, torch or fused) ran this very model with these very weights: its log-probs are
        # logp_new's values.
        logp_samp_BT = logp_new_BT.detach() if samp_BT is None else samp_BT.to(logp_new_BT)
        loss, _ = losses.opd_loss(logp_new_BT, logp_samp_BT, logp_teacher_BT, mask_BT, self.t["gamma"],
                                  normalizer)
        return loss, (logp_samp_BT - logp_teacher_BT).detach()

    # ---------------------------------------------------------------- diagnostics (Fig. 5)
    @torch.no_grad()
    @_in_compute_dtype
    def diagnostic_kl(self, step: int) -> tuple[list[tuple[int, int, int, float, int]], float]:
        """Full-length rollouts of a few prompts, no gradient: KL by position beyond the prefix, per rollout
        (rows: rollout, bin_start, bin_end, kl_mean, n_tokens; the rollout is the unit findings resample)."""
        n = self.t["diagnostic_rollouts"]
        rng = random.Random(self.seed * 31 + step)
        idx = rng.sample(range(len(self.records)), min(n, len(self.records)))
        rollouts = self._sample_same([self.prompts[i] for i in idx], 1, self.t["l_max"],
                                     seed=self.seed * 7919 + 10_000 + step)
        packed = Packed.build(rollouts.prompt_ids, rollouts.response_ids, self.pad_id).to(self.device)
        kl_BT, mask_BT = self._token_kl(packed), packed.response_mask_BT
        bins = [(i, *b) for i in range(kl_BT.shape[0])
                for b in losses.position_binned_kl(kl_BT[i:i + 1], mask_BT[i:i + 1], self.t["kl_bin"])]
        return bins, self._probe_flops([len(r) for r in rollouts.response_ids])  # response tokens, as App. B

    # ---------------------------------------------------------------- adaptive schedules' signals
    @_in_compute_dtype
    def schedule_signal(self, step: int, length: int, result: StepResult) -> tuple[float, float]:
        """(signal, its FLOPs) the run's adaptive schedule reads after 0-based `step` at L_train = `length`
        (schedules.py); (nan, 0) for a fixed schedule, at L_max, or on a step that measures nothing."""
        schedule = self.run.schedule
        kind = schedules.signal_kind(schedule) if schedule else None
        if kind is None or length >= self.t["l_max"]:
            return math.nan, 0.0
        p = schedules.params_of(schedule)
        if kind == "boundary_gap":
            lo = max(0, length - p["width"])
            return _span_kl(result.kl_rows, lo, length), 0.0
        if kind == "kl_frontier":
            return self.frontier_signal(step, length, p["width"], p["probes"])
        if (step + 1) % p["every"]:
            return math.nan, 0.0
        return self.dev_score(step, p["questions"], p["samples"])

    @torch.no_grad()
    def frontier_signal(self, step: int, length: int, width: int, probes: int) -> tuple[float, float]:
        """Per-token KL on the trained positions [0, L) over the KL on [L, L + width), from `probes` rollouts that
        run `width` tokens past L (both floored at 1e-3: a student that matches the teacher on both sides reads
        1; 0 when every probe ends within L), and the probe's FLOPs (sampling, and scoring by student and
        teacher)."""
        rng = random.Random(self.seed * 37 + step)
        idx = rng.sample(range(len(self.records)), min(probes, len(self.records)))
        rollouts = self._sample_same([self.prompts[i] for i in idx], 1, min(length + width, self.t["l_max"]),
                                     seed=self.seed * 7919 + 20_000 + step)
        packed = Packed.build(rollouts.prompt_ids, rollouts.response_ids, self.pad_id).to(self.device)
        kl_BT = self._token_kl(packed)
        rows = [(kl_BT, packed.response_mask_BT)]
        inside, beyond = _span_kl(rows, 0, length), _span_kl(rows, length, length + width)
        if math.isnan(inside):
            signal = math.nan
        elif math.isnan(beyond):  # every probe ended within L: nothing beyond it to wait for
            signal = 0.0
        else:
            signal = max(inside, 1e-3) / max(beyond, 1e-3)
        return signal, self._probe_flops([len(r) for r in rollouts.response_ids])

    @torch.no_grad()
    def dev_score(self, step: int, questions: int, samples: int) -> tuple[float, float]:
        """Mean correctness of `samples` responses to each of the first `questions` dev questions, and its FLOPs
        (sampling: one student forward over the generated tokens)."""
        from .evaluate import evaluate_benchmark  # the grader: only dev_plateau runs need it

        if self.dev_records is None:
            raise TrainingError("the dev_plateau schedule needs the dev benchmark (train(..., dev_path=...))")
        with self._gathered():  # every rank scores the same answers alike
            rows, summary = evaluate_benchmark(self.sampler, self.tokenizer, self.dev_records[:questions], samples,
                                               self.t["l_max"], seed=self.seed * 7919 + 30_000 + step)
        return float(summary["mean_at_k"]), flops.forward_flops(self.student_shape, [r["tokens"] for r in rows])

    def _token_kl(self, packed: Packed) -> torch.Tensor:
        logp_s = self._student(packed, lambda hidden_BTH, weight: losses.chunked_token_logprobs(
            hidden_BTH, weight, packed.targets_BT))
        logp_t = losses.chunked_token_logprobs(response_hidden(self.teacher, packed), output_weight(self.teacher),
                                               packed.targets_BT)
        return logp_s - logp_t

    def _probe_flops(self, response_lens: list[int]) -> float:
        """Sampling and scoring rollouts without an update: two student forwards and one teacher forward."""
        return 2 * flops.forward_flops(self.student_shape, response_lens) + flops.forward_flops(self.teacher_shape,
                                                                                                 response_lens)

    def step_flops(self, seq_lens: list[int]) -> float:
        """FLOPs of one step over rollouts of these lengths: response lengths give Appendix B's figure
        (supervised tokens of each rollout), prompt + response lengths the prompt-inclusive one."""
        if self.method.loss == "sft":
            return flops.seqkd_step_flops(self.student_shape, seq_lens)
        return flops.opd_step_flops(self.student_shape, self.teacher_shape, seq_lens)


def _pad(rows: list[list[float]], shape: torch.Size) -> torch.Tensor:
    out = torch.zeros(shape, dtype=torch.float32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.float32)
    return out


def _span_kl(rows: list[tuple[torch.Tensor, torch.Tensor]], start: int, end: int) -> float:
    """Per-token KL over response positions [start, end) of (kl_BT, mask_BT) micro-batches; nan with no token."""
    total, count = 0.0, 0
    for kl_BT, mask_BT in rows:
        keep = losses.window_mask(mask_BT, start, end).bool()
        total += float(kl_BT[keep].double().sum())
        count += int(keep.sum())
    return total / count if count else math.nan


def _merge_bins(rows: list[tuple[torch.Tensor, torch.Tensor]], bin_size: int) -> list[tuple[int, int, float, int]]:
    sums: dict[int, tuple[float, int]] = {}
    for kl_BT, mask_BT in rows:
        for start, _end, mean, count in losses.position_binned_kl(kl_BT, mask_BT, bin_size):
            s, c = sums.get(start, (0.0, 0))
            sums[start] = (s + mean * count, c + count)
    return [(s, s + bin_size, tot / c, c) for s, (tot, c) in sorted(sums.items()) if c]


def train(run: RunSpec, questions_path: str, offpolicy_path: str, work_dir: str, out_dir: str,
          threads: int = 1, device: str = "cpu", dev_path: str | None = None,
          gradient_checkpointing: bool = False) -> None:
    """Run (or resume) one training run and publish its checkpoints and metrics into `out_dir` (`dev_path`: the
    dev benchmark, read by the dev_plateau schedule only). Under torchrun, every rank calls it (sharding.py);
    rank 0 reads and writes the files."""
    group = sharding.join(device)
    inputs = [run.student_path, run.teacher_path, questions_path, offpolicy_path]
    inputs += [dev_path] if dev_path else []
    work = checkpointing.WorkDir(Path(work_dir), checkpointing.run_identity(run.as_settings(), inputs))
    trainer = Trainer(run, questions_path, offpolicy_path, threads, device, dev_path, gradient_checkpointing, group)
    log.info("%s: %s, student float32 (compute %s), gradient checkpointing %s, %d process(es) on %s", run.name,
             run.method, run.training["dtype"], "on" if gradient_checkpointing else "off", group.world,
             trainer.device)
    state = work.matching_state() if group.writer else None
    start = sharding.broadcast(state["step"] if state else 0, group)
    if start:
        sharding.load_full_state(trainer.call, trainer.optimizer, state["model"] if state else {},
                                 state["optimizer"] if state else {}, group)
        log.info("resuming %s from step %d (of %d)", run.name, start, run.steps)
    del state
    if group.writer:
        work.prepare(start)
    metrics = sharding.broadcast(work.metrics(start) if group.writer else None, group)
    flops_cum = metrics[-1]["flops_cum"] if metrics else 0.0
    with_prompt_cum = metrics[-1].get("flops_with_prompt_cum", 0.0) if metrics else 0.0
    seconds_cum = metrics[-1]["seconds_cum"] if metrics else 0.0
    log_steps = set(run.training["log_steps"])
    bar = tqdm(range(start, run.steps), initial=start, total=run.steps, desc=run.name,
               mininterval=5.0, disable=not group.writer)
    for step in bar:
        t0 = time.perf_counter()
        length = methods.generation_length(trainer.spec, step, metrics)  # an adaptive schedule reads the history
        try:
            result = trainer.step(step, length)
        except TrainingError as err:
            last = work.last_checkpoint()
            raise TrainingError(f"{run.name}: {err}; stopped without an update. The last good checkpoint "
                                f"is {last or 'none (no step was saved)'}; the run resumes from it once the cause "
                                "is fixed (e.g. a lower lr)") from None
        signal, signal_flops = trainer.schedule_signal(step, length, result)
        elapsed = time.perf_counter() - t0
        step_flops = trainer.step_flops(result.response_lens) + signal_flops  # the schedule's signal is its cost
        flops_cum += step_flops
        with_prompt = trainer.step_flops(result.seq_lens) + signal_flops
        with_prompt_cum += with_prompt
        seconds_cum += elapsed
        diag_flops = 0.0
        kl_rows: list[tuple[str, list[tuple[int, int, int, float, int]]]] = []
        if step in log_steps and trainer.method.kl_log:  # KL of the student after `step` updates
            kl_rows.append(("train", [(-1, *b) for b in result.kl_bins]))
            if trainer.method.diagnostics:
                bins, diag_flops = trainer.diagnostic_kl(step)
                kl_rows.append(("diagnostic", bins))
        row = {"step": step + 1, "l_train": length, "rollouts": result.rollouts,
               "prompt_tokens": result.prompt_tokens, "response_tokens": result.response_tokens,
               "loss": result.loss, "kl_mean": result.kl_sum / max(1, result.kl_tokens), "flops": step_flops,
               "flops_cum": flops_cum, "flops_with_prompt": with_prompt, "flops_with_prompt_cum": with_prompt_cum,
               "diag_flops": diag_flops, "signal": signal, "signal_flops": signal_flops, "seconds": elapsed,
               "seconds_cum": seconds_cum}
        if group.writer:
            for source, bins in kl_rows:
                work.append_kl(step, source, bins)
            work.append_metrics(row)
        metrics.append(row)
        bar.set_postfix(loss=f"{result.loss:.3f}", kl=f"{row['kl_mean']:.3f}", L=row["l_train"], refresh=False)
        if (step + 1) % run.save_every == 0 or step + 1 == run.steps:
            model_state, optim_state = sharding.full_state(trainer.call, trainer.optimizer)  # every rank
            if group.writer:
                work.save(step + 1, trainer.student, trainer.tokenizer, model_state, optim_state,
                          bf16=trainer.autocast_dtype == torch.bfloat16)  # the export in the compute precision
    if group.writer:
        work.publish(Path(out_dir))
    sharding.leave(group)


def cli_args(settings_path: str, questions_path: str, offpolicy_path: str, work_dir: str, out_dir: str,
             threads: int, device: str, dev_path: str | None, gradient_checkpointing: bool) -> list[str]:
    """`main`'s arguments for these (the command line `sharding.launch` gives each rank)."""
    args = ["--settings", settings_path, "--questions", questions_path, "--seqkd", offpolicy_path,
            "--work", work_dir, "--out", out_dir, "--threads", str(threads), "--device", device]
    args += ["--dev", dev_path] if dev_path else []
    return args + (["--gradient-checkpointing"] if gradient_checkpointing else [])


def main(argv: list[str] | None = None) -> None:
    """`python -m prefix_opd.train --settings results/runs/<run>/run.yaml ...`: one run, outside Snakemake."""
    import argparse

    import yaml

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--settings", required=True, help="a run.yaml written by the workflow (rule run_settings)")
    ap.add_argument("--questions", default=paths.OPD_QUESTIONS)
    ap.add_argument("--seqkd", default=paths.SEQKD)
    ap.add_argument("--work", required=True, help="resumable state folder")
    ap.add_argument("--out", required=True, help="where checkpoints/ and metrics are published")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dev", default=None, help="the dev benchmark (dev_plateau schedules)")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with open(args.settings) as f:
        settings = yaml.safe_load(f)
    train(RunSpec.from_settings(settings), args.questions, args.seqkd, args.work, args.out, args.threads, args.device,
          args.dev, args.gradient_checkpointing)


if __name__ == "__main__":
    main()
