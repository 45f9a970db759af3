"""Response-aligned forward passes (models.py): right padding must not leak into real positions."""

from __future__ import annotations

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

from prefix_opd.models import Packed, response_logprobs


def test_a_row_scores_the_same_alone_and_beside_longer_rows() -> None:
    """`response_hidden` passes no attention mask (causal attention hides the right padding): a short row
    padded beside long ones gets exactly the log-probs it gets alone, and positions past its end are masked."""
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(Qwen3Config(vocab_size=30, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                         pad_token_id=0)).eval()
    prompts, responses = [[3, 4, 5], [6, 7, 8, 9, 10, 11], [12]], [[13, 14], [15] * 9, [16, 17, 18, 19]]
    with torch.no_grad():
        packed = Packed.build(prompts, responses, 0)
        together = response_logprobs(model, packed)
        for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
            alone = response_logprobs(model, Packed.build([p], [r], 0))[0]
            assert torch.allclose(together[i, : len(r)], alone, atol=1e-6), i
            assert packed.response_mask_BT[i].sum() == len(r)
    # and they are the plain causal-LM log-probs of the unpadded sequence
    p, r = prompts[1], responses[1]
    with torch.no_grad():
        logits = model(torch.tensor([p + r])).logits[0, len(p) - 1: -1]
    expected = logits.log_softmax(-1).gather(-1, torch.tensor(r)[:, None]).squeeze(-1)
    assert torch.allclose(together[1, : len(r)], expected, atol=1e-5)
