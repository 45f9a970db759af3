"""`TorchSampler` (qwen3_decode's KV-cache loop) and `FusedSampler` (fused_decode's C kernel) against the Hugging
Face model they read their weights from."""

from __future__ import annotations

import pytest
import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

from prefix_opd.models import Packed, response_logprobs
from prefix_opd.sampling import FusedSampler, HFSampler, TorchSampler

VOCAB, PAD, STOPS = 40, 0, [1, 2]


def tiny_qwen3(seed: int = 0, **over) -> Qwen3ForCausalLM:
    torch.manual_seed(seed)
    config = Qwen3Config(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
                         pad_token_id=PAD, tie_word_embeddings=False, **over)
    model = Qwen3ForCausalLM(config).eval()
    with torch.no_grad():  # sharper, less uniform distributions than the init's, so stops come at various steps
        for p in model.parameters():
            p.mul_(4.0 if p.dim() > 1 else 1.0)
    return model


PROMPTS = [[5, 6, 7, 8, 9, 10, 11], [12, 13, 14], [15, 16, 17, 18, 19], [20]]  # ragged: left padding
SAMPLERS = pytest.mark.parametrize("Sampler", [TorchSampler, FusedSampler], ids=["torch", "fused"])


@SAMPLERS
def test_sampled_tokens_logprobs_match_the_hf_forward(Sampler: type) -> None:
    """Prefill with padding, decode, cache compaction: every sampled token's log-prob equals HF's."""
    model = tiny_qwen3()
    sampler = Sampler(model, STOPS, PAD, return_logprobs=True)
    r = sampler.sample(PROMPTS, 8, 48, seed=3)
    assert len(r) == 32 and r.prompt_ids[0] == PROMPTS[0] and r.prompt_ids[8] == PROMPTS[1]
    lengths = [len(x) for x in r.response_ids]
    assert 3 < len(set(lengths)) and sum(r.finished) >= 8 and not all(r.finished)  # stops at many steps, some cut
    for ids, done in zip(r.response_ids, r.finished, strict=True):
        assert done == (ids[-1] in STOPS) and not any(t in STOPS for t in ids[:-1])
        assert done or len(ids) == 48
    with torch.no_grad():
        hf = response_logprobs(model, Packed.build(r.prompt_ids, r.response_ids, PAD))
    worst = max(abs(hf[i, j].item() - v) for i, row in enumerate(r.sampler_logprobs) for j, v in enumerate(row))
    assert worst < 1e-4, worst


@SAMPLERS
def test_first_token_frequencies_follow_the_model(Sampler: type) -> None:
    model = tiny_qwen3(seed=1)
    with torch.no_grad():
        probs = model(torch.tensor([PROMPTS[0]])).logits[0, -1].softmax(-1)
    r = Sampler(model, STOPS, PAD).sample([PROMPTS[0]], 4000, 1, seed=0)
    counts = torch.bincount(torch.tensor([x[0] for x in r.response_ids]), minlength=VOCAB).float()
    total_variation = 0.5 * (counts / counts.sum() - probs).abs().sum().item()
    assert total_variation < 0.05, total_variation


@SAMPLERS
def test_top_p_keeps_to_the_nucleus(Sampler: type) -> None:
    model = tiny_qwen3(seed=1)
    with torch.no_grad():
        probs = model(torch.tensor([PROMPTS[0]])).logits[0, -1].softmax(-1)
    order = probs.argsort(descending=True).tolist()
    mass, nucleus = 0.0, set()
    for tok in order:
        nucleus.add(tok)
        mass += probs[tok].item()
        if mass >= 0.5:
            break
    r = Sampler(model, STOPS, PAD, top_p=0.5).sample([PROMPTS[0]], 500, 1, seed=0)
    seen = {x[0] for x in r.response_ids}
    assert seen <= nucleus and len(seen) == len(nucleus)


@SAMPLERS
def test_greedy_equals_hf_generate(Sampler: type) -> None:
    model = tiny_qwen3(seed=2)
    ours = Sampler(model, STOPS, PAD, temperature=0).sample(PROMPTS, 1, 24, seed=0)
    for prompt, ids in zip(PROMPTS, ours.response_ids, strict=True):
        out = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=24, eos_token_id=STOPS,
                             pad_token_id=PAD)[0, len(prompt):].tolist()
        assert ids == out[: len(ids)] and (len(ids) == len(out) or out[len(ids)] == PAD)


@SAMPLERS
def test_seeded_and_batch_split_like_hf(Sampler: type) -> None:
    model = tiny_qwen3(seed=3)
    a = Sampler(model, STOPS, PAD).sample(PROMPTS, 4, 32, seed=7)
    b = Sampler(model, STOPS, PAD).sample(PROMPTS, 4, 32, seed=7)
    c = Sampler(model, STOPS, PAD).sample(PROMPTS, 4, 32, seed=8)
    assert a.response_ids == b.response_ids and a.response_ids != c.response_ids
    small = Sampler(model, STOPS, PAD, max_batch_tokens=100).sample(PROMPTS, 4, 32, seed=7)  # 2 rows a call
    assert small.prompt_ids == a.prompt_ids and len(small) == 16
    hf = HFSampler(model, STOPS, PAD).sample(PROMPTS, 4, 32, seed=7)
    assert hf.prompt_ids == a.prompt_ids


@SAMPLERS
def test_weights_follow_the_trainer(Sampler: type) -> None:
    model = tiny_qwen3(seed=4)
    sampler = Sampler(model, STOPS, PAD, temperature=0)
    before = sampler.sample(PROMPTS, 1, 16, seed=0).response_ids
    with torch.no_grad():
        model.lm_head.weight[:, :] = 0
        model.lm_head.weight[9, :] = 1  # every step now prefers token 9 (or its negation: never a stop)
    sampler.update_weights(model)
    after = sampler.sample(PROMPTS, 1, 16, seed=0).response_ids
    assert after != before and len({t for ids in after for t in ids}) <= 2


@SAMPLERS
def test_unsupported_architecture_is_refused(Sampler: type) -> None:
    with pytest.raises(ValueError, match="'fused' samplers support plain Qwen3 models only.*attention_bias"):
        Sampler(tiny_qwen3(attention_bias=True), STOPS, PAD)


def test_hf_reference_scores_a_row_the_same_alone_and_beside_longer_rows() -> None:
    """The reference above, `response_logprobs`, passes no attention mask (causal attention hides the right
    padding): a short row padded beside long ones gets exactly the log-probs it gets alone, and those are the
    plain causal-LM log-probs of the unpadded sequence."""
    model = tiny_qwen3()
    prompts, responses = [[3, 4, 5], [6, 7, 8, 9, 10, 11], [12]], [[13, 14], [15] * 9, [16, 17, 18, 19]]
    with torch.no_grad():
        packed = Packed.build(prompts, responses, PAD)
        together = response_logprobs(model, packed)
        for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
            alone = response_logprobs(model, Packed.build([p], [r], PAD))[0]
            assert torch.allclose(together[i, : len(r)], alone, atol=1e-6), i
            assert packed.response_mask_BT[i].sum() == len(r)
        p, r = prompts[1], responses[1]
        logits = model(torch.tensor([p + r])).logits[0, len(p) - 1: -1]
    expected = logits.log_softmax(-1).gather(-1, torch.tensor(r)[:, None]).squeeze(-1)
    assert torch.allclose(together[1, : len(r)], expected, atol=1e-5)


def test_fused_rows_are_independent_of_threads_and_batch() -> None:
    """Row b's draws are the uniforms [b, :] of one seeded draw: the same samples on 1 or 2 threads, and a row's
    sample does not depend on which other rows share the call."""
    model = tiny_qwen3(seed=5)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = FusedSampler(model, STOPS, PAD, return_logprobs=True).sample(PROMPTS, 4, 32, seed=11)
        torch.set_num_threads(2)
        two = FusedSampler(model, STOPS, PAD, return_logprobs=True).sample(PROMPTS, 4, 32, seed=11)
    finally:
        torch.set_num_threads(before)
    assert one.response_ids == two.response_ids and one.sampler_logprobs == two.sampler_logprobs
    first = FusedSampler(model, STOPS, PAD).sample(PROMPTS[:1], 4, 32, seed=11)
    assert first.response_ids == one.response_ids[:4]


def test_fused_refuses_a_model_off_the_cpu() -> None:
    """The kernel reads the weights' memory directly: a model elsewhere (here the meta device) is refused."""
    with pytest.raises(ValueError, match="'fused' sampler runs on CPU only"):
        FusedSampler(tiny_qwen3().to("meta"), STOPS, PAD)


def test_fused_kernel_is_built_once_into_its_cache(tmp_path, monkeypatch) -> None:
    """First use compiles fused_decode.c into $PREFIX_OPD_KERNEL_CACHE, named by source, flags and CPU; an
    unwritable cache folder is one clear error naming the variable."""
    from prefix_opd import fused_decode

    monkeypatch.setenv("PREFIX_OPD_KERNEL_CACHE", str(tmp_path / "kernels"))
    fused_decode.library.cache_clear()
    try:
        fused_decode.library()
        built = list((tmp_path / "kernels").iterdir())
        assert len(built) == 1 and built[0].name.startswith("fused_decode-") and built[0].suffix == ".so"
        stamp = built[0].stat().st_mtime_ns
        fused_decode.library.cache_clear()  # a new process, as it were: it finds the library and loads it
        r = FusedSampler(tiny_qwen3(), STOPS, PAD).sample(PROMPTS, 2, 8, seed=0)
        assert len(r) == 8 and list((tmp_path / "kernels").iterdir()) == built
        assert built[0].stat().st_mtime_ns == stamp  # reused, not rebuilt
        (tmp_path / "file").write_text("")
        monkeypatch.setenv("PREFIX_OPD_KERNEL_CACHE", str(tmp_path / "file" / "kernels"))
        fused_decode.library.cache_clear()
        with pytest.raises(RuntimeError, match="cannot write its compiled kernel.*PREFIX_OPD_KERNEL_CACHE"):
            fused_decode.library()
    finally:
        fused_decode.library.cache_clear()


def test_loading_the_fused_kernel_leaves_denormals_alone(tmp_path) -> None:
    """The kernel is compiled with -ffast-math but must not switch the process to flush-to-zero: torch's and
    numpy's subnormal numbers survive loading it (a fresh process and kernel cache, so nothing is preloaded)."""
    import os
    import subprocess
    import sys

    code = ("import numpy, torch\n"
            "from prefix_opd.fused_decode import library\n"
            "before = (float(numpy.float64(1e-310) * 1.0), float(torch.tensor([1e-40]) * 1.0))\n"
            "library()\n"
            "after = (float(numpy.float64(1e-310) * 1.0), float(torch.tensor([1e-40]) * 1.0))\n"
            "print(before[0] > 0 and before[1] > 0, after[0] > 0 and after[1] > 0)\n")
    env = {**os.environ, "PREFIX_OPD_KERNEL_CACHE": str(tmp_path / "kernels")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]
