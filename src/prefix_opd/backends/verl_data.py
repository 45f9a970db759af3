"""Data in and metrics out of verl: training JSONL -> verl's RL parquet; verl's logged metrics -> metrics.csv rows.

Parquet rows follow verl's RL examples and `verl/utils/dataset/rl_dataset.py` (0.9.1):
`{"data_source", "prompt": [{"role": "user", "content": ...}], "ability", "reward_model": {"style",
"ground_truth"}, "extra_info": {"index", ...}}`. `data.prompt_key=prompt` makes `RLHFDataset` hand the
message list to the agent loop as `raw_prompt`. `<think>` is *not* stored: our agent loop
(`verl_schedule.PrefixOPDAgentLoop`) renders the chat template with the generation prompt and appends
`<think>` itself, token for token as `prefix_opd.models.encode_prompt` does for the native engine, so
prompts stay plain chat messages and no custom chat template has to be smuggled through Hydra.
`ground_truth` is empty: task rewards are off (`use_task_rewards=false`) and the agent loop sets the
reward to 0. Rows are written in the order the native engine draws prompts (a seeded permutation per
epoch, `batch_prompts` per step) with `data.shuffle=false`, so step k of a verl run sees the prompts of
step k of a native run; `extra_info.step` records it.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .. import flops
from ..checkpointing import METRIC_COLUMNS
from ..runs import training_seed
from .verl_schedule import max_tokens_at, rollout_spec

DATA_SOURCE = "prefix_opd"


def native_order(n_records: int, batch_prompts: int, steps: int, seed: int) -> list[tuple[int, int]]:
    """(0-based step, record index) of every prompt, as `prefix_opd.train.Trainer.batch_indices` draws them."""
    out, perms = [], {}
    for step in range(steps):
        for k in range(step * batch_prompts, (step + 1) * batch_prompts):
            epoch, pos = divmod(k, n_records)
            if epoch not in perms:
                perm = list(range(n_records))
                random.Random(seed * 1_000_003 + epoch).shuffle(perm)
                perms[epoch] = perm
            out.append((step, perms[epoch][pos]))
    return out


def rl_row(record: dict[str, Any], index: int, split: str, step: int | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = {"index": index, "id": str(record["id"]), "split": split}
    if step is not None:
        extra["step"] = step
    return {"data_source": DATA_SOURCE, "prompt": [{"role": "user", "content": record["prompt"]}],
            "ability": str(record.get("domain", "")), "reward_model": {"style": "rule", "ground_truth": ""},
            "extra_info": extra}


def train_rows(records: list[dict[str, Any]], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """steps x batch_prompts rows in the native engine's order (prompts repeat across epochs)."""
    t = settings["training"]
    order = native_order(len(records), int(t["batch_prompts"]), int(settings["steps"]), training_seed(settings))
    return [rl_row(records[i], i, "train", step) for step, i in order]


def val_rows(records: list[dict[str, Any]], n: int = 8) -> list[dict[str, Any]]:
    """A few rows for `data.val_files` (verl builds a validation set even with `test_freq=-1`)."""
    return [rl_row(r, i, "val") for i, r in enumerate(records[:n])]


def write_parquet(rows: list[dict[str, Any]], path: str | Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.Table.from_pylist(rows), tmp)
    tmp.replace(path)
    return path


def read_parquet(path: str | Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def convert(questions_jsonl: str | Path, settings: dict[str, Any], out_dir: str | Path,
            n_val: int = 8) -> tuple[Path, Path]:
    """Write `<out_dir>/train.parquet` and `<out_dir>/val.parquet` from the OPD questions JSONL."""
    with open(questions_jsonl) as f:
        records = [json.loads(line) for line in f if line.strip()]
    out = Path(out_dir)
    return (write_parquet(train_rows(records, settings), out / "train.parquet"),
            write_parquet(val_rows(records, n_val), out / "val.parquet"))


def max_prompt_tokens(tokenizer: Any, rows: Iterable[dict[str, Any]]) -> int:
    """Longest rendered prompt (chat template + `<think>`), for `data.max_prompt_length`."""
    from ..models import encode_prompt

    seen: dict[str, int] = {}
    for row in rows:
        text = row["prompt"][0]["content"]
        if text not in seen:
            seen[text] = len(encode_prompt(tokenizer, row["prompt"]))
    return max(seen.values(), default=1)


# ---------------------------------------------------------------------------------------------- metrics

_CONSOLE_ITEM = re.compile(r"^(?P<key>[^:]+):(?P<value>.+)$")


def _number(text: str) -> float | None:
    text = text.strip()
    m = re.fullmatch(r"[A-Za-z_.0-9]*\((.*)\)", text)  # np.float64(0.5), tensor(0.5)
    if m:
        text = m.group(1).split(",")[0]
    try:
        return float(text)
    except ValueError:
        return None


def read_verl_log(source: str | Path | Iterable[str | dict[str, Any]]) -> dict[int, dict[str, float]]:
    """{step: {metric: value}} from verl's file logger JSONL (`{"step", "data"}` per line), a path to one,
    or console lines (`step:3 - key:value - ...`); the last record of a step wins (resumed runs)."""
    if isinstance(source, str | Path) and Path(source).exists():
        with open(source) as f:
            source = f.read().splitlines()
    elif isinstance(source, str):
        source = source.splitlines()
    steps: dict[int, dict[str, float]] = {}
    for item in source:
        if isinstance(item, dict):
            rec = item
        else:
            line = item.strip()
            if not line:
                continue
            if line.startswith("{"):
                rec = json.loads(line)
            elif "step:" in line:
                parts = line[line.index("step:"):].split(" - ")
                rec = {"data": {}}
                for part in parts:
                    m = _CONSOLE_ITEM.match(part.strip())
                    if not m:
                        continue
                    value = _number(m.group("value"))
                    if m.group("key") == "step":
                        rec["step"] = int(value) if value is not None else None
                    elif value is not None:
                        rec["data"][m.group("key")] = value
                if rec.get("step") is None:
                    continue
            else:
                continue
        data = rec.get("data", {k: v for k, v in rec.items() if k != "step"})
        steps[int(rec["step"])] = {k: float(v) for k, v in data.items() if isinstance(v, int | float)}
    return steps


def read_lengths(path: str | Path | None) -> dict[int, list[tuple[int, int, int]]]:
    """{step: [(prompt, response, loss_tokens), ...]} from the agent loop's JSONL (see `verl_schedule`)."""
    out: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    if path is None or not Path(path).exists():
        return out
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                out[int(r["step"])].append((int(r["prompt"]), int(r["response"]), int(r["loss_tokens"])))
    return out


def _first(data: dict[str, float], *keys: str) -> float | None:
    for k in keys:
        if k in data:
            return data[k]
    return None


def metrics_from_verl(source: str | Path | Iterable[str | dict[str, Any]], settings: dict[str, Any],
                      student: flops.ModelShape, teacher: flops.ModelShape,
                      lengths: str | Path | dict[int, list[tuple[int, int, int]]] | None = None
                      ) -> list[dict[str, Any]]:
    """`metrics.csv` rows (`checkpointing.METRIC_COLUMNS`) from a verl run's logged metrics.

    * rollouts = batch_prompts x samples_per_prompt; prompt/response tokens from `prompt_length/mean` and
      `response_length/mean` (times rollouts), or exactly from the agent loop's lengths file;
    * loss = `actor/distillation/loss`: the surrogate summed over each rollout's tokens, averaged over the
      rollouts (seq-mean-token-sum, the native engine's normalisation; verl sums the micro-batches' and
      ranks' shares of it);
    * kl_mean = loss x rollouts / loss tokens: the mean sampled reverse KL k1 per token (exact when the
      importance ratio is 1, i.e. up to sampler/trainer numerics); rollouts counted as verl does (those with
      a loss token) and loss tokens from the lengths file, else all rollouts and the response tokens (not
      known for opd_window without the file: NaN);
    * flops = `flops.opd_step_flops` over the supervised sequence lengths (prompt + response): exact with
      the lengths file, else from the mean length (sum(s^2) taken as n * mean^2, a lower bound);
    * seconds = `timing_s/step`; diag_flops = 0 (the Fig. 5 diagnostic rollouts are native-only).
    """
    logged = read_verl_log(source)
    per_step = lengths if isinstance(lengths, dict) else read_lengths(lengths)
    t = settings["training"]
    n = int(t["batch_prompts"]) * int(t["samples_per_prompt"])
    spec = rollout_spec(settings)
    rows, flops_cum, with_prompt_cum, seconds_cum = [], 0.0, 0.0, 0.0
    for step in sorted(logged):
        data = logged[step]
        measured = per_step.get(step, [])[-n:]
        if measured:
            seq_lens = [p + r for p, r, _ in measured]
            response_lens = [r for _, r, _ in measured]
            prompt_tokens = sum(p for p, _, _ in measured)
            response_tokens = sum(r for _, r, _ in measured)
            loss_tokens: float = sum(m for _, _, m in measured)
            in_loss = sum(1 for _, _, m in measured if m > 0)
        else:
            p_mean = _first(data, "prompt_length/mean") or 0.0
            r_mean = _first(data, "response_length/mean") or 0.0
            prompt_tokens, response_tokens = round(p_mean * n), round(r_mean * n)
            seq_lens = [round(p_mean + r_mean)] * n
            response_lens = [round(r_mean)] * n
            loss_tokens = math.nan if settings["method"] == "opd_window" else response_tokens
            in_loss = n
        loss = _first(data, "actor/distillation/loss", "distillation/loss", "actor/pg_loss")
        loss = math.nan if loss is None else loss
        step_flops = flops.opd_step_flops(student, teacher, response_lens)  # supervised tokens (Appendix B)
        with_prompt = flops.opd_step_flops(student, teacher, seq_lens)
        seconds = _first(data, "timing_s/step", "perf/time_per_step") or 0.0
        flops_cum += step_flops
        with_prompt_cum += with_prompt
        seconds_cum += seconds
        kl_mean = loss * in_loss / loss_tokens if loss_tokens and not math.isnan(loss_tokens) else math.nan
        rows.append({"step": step, "l_train": max_tokens_at(spec, step - 1), "rollouts": n,
                     "prompt_tokens": prompt_tokens, "response_tokens": response_tokens, "loss": loss,
                     "kl_mean": kl_mean, "flops": step_flops, "flops_cum": flops_cum,
                     "flops_with_prompt": with_prompt, "flops_with_prompt_cum": with_prompt_cum, "diag_flops": 0.0,
                     "signal": math.nan, "signal_flops": 0.0, "seconds": seconds, "seconds_cum": seconds_cum})
    return [{k: r[k] for k in METRIC_COLUMNS} for r in rows]
