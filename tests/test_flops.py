"""FLOP accounting (Appendix B, docs/design.md section 4) against hand-computed numbers."""

import pytest

from prefix_opd.flops import (
    ATTENTION_CONSTANT,
    ModelShape,
    dense_params,
    forward_flops,
    opd_step_flops,
    seqkd_step_flops,
    train_flops,
)

QWEN3_1_7B = ModelShape(
    hidden=2048, layers=28, heads=16, kv_heads=8, head_dim=128, intermediate=6144, vocab=151936
)
QWEN3_8B = ModelShape(
    hidden=4096, layers=36, heads=32, kv_heads=8, head_dim=128, intermediate=12288, vocab=151936
)


def test_attention_constant_is_verl_c936ec7():
    assert ATTENTION_CONSTANT == 12


def test_dense_params_qwen3_1_7b():
    # mlp 3*2048*6144 = 37,748,736; attn 2048*(2*16*128 + 2*8*128) = 2048*6144 = 12,582,912
    # per layer 50,331,648; x28 = 1,409,286,144; embeddings 2*151936*2048 = 622,329,856
    assert dense_params(QWEN3_1_7B) == 1_409_286_144 + 622_329_856 == 2_031_616_000


def test_dense_params_qwen3_8b():
    # mlp 3*4096*12288 = 150,994,944; attn 4096*(2*32*128 + 2*8*128) = 4096*10240 = 41,943,040
    # per layer 192,937,984; x36 = 6,945,767,424; embeddings 2*151936*4096 = 1,244,659,712
    assert dense_params(QWEN3_8B) == 6_945_767_424 + 1_244_659_712 == 8_190_427_136


def test_train_flops_one_1000_token_sequence():
    # 1.7B: 6*N*1000 = 12,189,696,000,000; attention 12*1000^2*128*16*28 = 688,128,000,000
    assert train_flops(QWEN3_1_7B, [1000]) == 12_189_696_000_000 + 688_128_000_000
    # 8B: 6*N*1000 = 49,142,562,816,000; attention 12*1000^2*128*32*36 = 1,769,472,000,000
    assert train_flops(QWEN3_8B, [1000]) == 49_142_562_816_000 + 1_769_472_000_000
    assert forward_flops(QWEN3_8B, [1000]) == pytest.approx((49_142_562_816_000 + 1_769_472_000_000) / 3)


def test_attention_term_uses_sum_of_squares():
    # two sequences of 500: tokens 1000 (same linear term), squares 2*250,000 = 500,000 (half the attention)
    assert train_flops(QWEN3_1_7B, [500, 500]) == 12_189_696_000_000 + 344_064_000_000
    # current verl's constant 6 halves the attention term
    assert train_flops(QWEN3_1_7B, [1000], attn_const=6) == 12_189_696_000_000 + 344_064_000_000


def test_from_hf_config_dict_and_object():
    cfg = {
        "hidden_size": 2048,
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "intermediate_size": 6144,
        "vocab_size": 151936,
    }
    assert ModelShape.from_hf_config(cfg) == QWEN3_1_7B
    no_head_dim = {k: v for k, v in cfg.items() if k != "head_dim"}
    assert ModelShape.from_hf_config(no_head_dim).head_dim == 2048 // 16

    from transformers import Qwen3Config

    hf = Qwen3Config(
        hidden_size=4096,
        num_hidden_layers=36,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=128,
        intermediate_size=12288,
        vocab_size=151936,
    )
    assert ModelShape.from_hf_config(hf) == QWEN3_8B


def test_seqkd_counts_training_pass_only():
    assert seqkd_step_flops(QWEN3_1_7B, [1000]) == 12_189_696_000_000 + 688_128_000_000


def test_opd_8b_prefix_256_check_against_paper():
    # per rollout L = 256 (response tokens only), student = teacher = 8B:
    # F_train = 6*8,190,427,136*256 + 12*256^2*128*32*36 = 12,580,496,080,896 + 115,964,116,992
    f_train = 12_580_496_080_896 + 115_964_116_992
    assert train_flops(QWEN3_8B, [256]) == f_train
    # F_OPD = F_train + 2*F_train/3 + F_train/3 = 2*F_train = 25,392,920,395,776 per rollout
    assert opd_step_flops(QWEN3_8B, QWEN3_8B, [256]) == pytest.approx(25_392_920_395_776)
    # one step = 2048 rollouts (512 prompts x 4 samples)
    step = opd_step_flops(QWEN3_8B, QWEN3_8B, [256] * 2048)
    assert step == pytest.approx(2048 * 25_392_920_395_776)
    total = 60 * step  # = 3.1203e18, against the paper's 3.4e18 (Table 2, prefix 256)
    assert total == pytest.approx(3.1e18, rel=0.05)
    assert total == pytest.approx(60 * 2048 * 25_392_920_395_776)


def test_opd_student_teacher_differ():
    # 1.7B student, 8B teacher, L = 1000: F_train(S) + 2/3 F_train(S) + 1/3 F_train(T)
    f_s = 12_189_696_000_000 + 688_128_000_000
    f_t = 49_142_562_816_000 + 1_769_472_000_000
    assert opd_step_flops(QWEN3_1_7B, QWEN3_8B, [1000]) == pytest.approx(f_s * 5 / 3 + f_t / 3)
