"""The training-speed benchmark counts every FLOP of a CPU training step, attention included."""
import torch

from benchmarks.train_speed import flop_counter_mode, make_train_step, measure_variant
from models.passt import get_model

aten = torch.ops.aten


def count_step(model, batch_size):
    with flop_counter_mode() as counter:
        make_train_step(model, batch_size, precision="32", optimizer_kind="foreach")()
    return counter.get_flop_counts()["Global"], counter.get_total_flops()


def test_cpu_flash_attention_is_counted_with_torchs_sdpa_formulas():
    model = get_model("passt_tiny", pretrained=False, s_patchout_t=40, s_patchout_f=4).train()
    batch, tokens = 2, model.sequence_length(128, 998, training=True)
    width, depth = model.embed_dim, len(model.blocks)
    counts, total = count_step(model, batch)
    # forward: Q K^T and P V; backward: the recomputed scores plus four products (torch's flash formula)
    assert counts[aten._scaled_dot_product_flash_attention_for_cpu] == 2 * 2 * batch * tokens ** 2 * width * depth
    assert counts[aten._scaled_dot_product_flash_attention_for_cpu_backward] == (
        5 * 2 * batch * tokens ** 2 * width * depth)
    # the blocks' linear layers: 12 E^2 multiply-adds per token forward, twice that backward
    block_linear = 3 * 2 * 12 * batch * tokens * width ** 2 * depth
    assert counts[aten.mm] + counts[aten.addmm] > block_linear
    assert total == sum(counts.values())


def test_a_bf16_mixed_step_trains_the_model():
    model = get_model("passt_tiny", pretrained=False, s_patchout_t=40, s_patchout_f=4).train()
    before = [p.detach().clone() for p in model.parameters()]
    make_train_step(model, 2, precision="bf16-mixed", optimizer_kind="fused")()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_the_real_size_passt_s_step_is_measured_with_its_attention_flops():
    row = measure_variant("passt_s", batch_size=1, steps=1, warmup=0, compile_model=False)
    assert row["tokens"] == 8 * 59 + 2  # 12 x 99 grid, 4 frequency rows and 40 time columns dropped
    attention = (2 + 5) * 2 * row["tokens"] ** 2 * 768 * 12
    linear = 3 * 2 * 12 * row["tokens"] * 768 ** 2 * 12
    assert linear + attention < row["flops_per_step"] < 1.02 * (linear + attention)
    assert row["step_s"] > 0 and 0 < row["fraction_of_peak"] < 2.5
