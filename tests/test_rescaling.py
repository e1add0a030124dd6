import math

import pytest
import torch

from hf_learngene import Learngene, LearngeneConfigError
from hf_learngene.methods.rescaling import RESCALING_POLICIES, restore, standardize

from conftest import tiny_config, tiny_model


def test_standardize_then_restore_is_exact():
    torch.manual_seed(0)
    x = torch.randn(30, 20) * 0.05 + 1.0
    z, mean, std = standardize(x)
    for policy in RESCALING_POLICIES:
        assert torch.allclose(restore(z, mean, std, policy, 20, 20, resized=False).float(), x, atol=1e-6)


def test_source_std_restores_the_source_statistics():
    torch.manual_seed(0)
    z = torch.randn(64, 64, dtype=torch.float64) * 0.3  # a low-passed signal lost variance
    out = restore(z, 1.0, 0.05, "source_std")
    assert out.std(unbiased=False).item() == pytest.approx(0.05, rel=1e-6)
    assert out.mean().item() == pytest.approx(1.0, abs=1e-3)


def test_fan_in_scales_with_the_width():
    torch.manual_seed(0)
    z = torch.randn(64, 128, dtype=torch.float64)
    out = restore(z, 0.0, 0.04, "fan_in", source_fan_in=64, target_fan_in=128)
    assert out.std(unbiased=False).item() == pytest.approx(0.04 * math.sqrt(0.5), rel=1e-6)
    vector = restore(torch.randn(10, dtype=torch.float64), 0.0, 0.04, "fan_in", None, None)
    assert vector.std(unbiased=False).item() == pytest.approx(0.04, rel=1e-6)


def test_constant_tensors_stay_constant():
    z, mean, std = standardize(torch.ones(12))
    assert torch.equal(restore(torch.zeros(20, dtype=torch.float64), mean, std, "source_std"), torch.ones(20).double())


def test_unknown_policy():
    with pytest.raises(LearngeneConfigError, match="auto, source_std, fan_in, none, preserve_function"):
        restore(torch.zeros(3), 0.0, 1.0, "zscore")


def test_preserve_function_divides_by_the_fan_in_ratio():
    z = torch.randn(8, 32, dtype=torch.float64)
    out = restore(z, 0.1, 0.05, "preserve_function", source_fan_in=16, target_fan_in=32)
    assert torch.allclose(out, (z * 0.05 + 0.1) / 2)
    vector = restore(z[0], 0.1, 0.05, "preserve_function", None, None)  # no fan-in: values kept as they are
    assert torch.allclose(vector, z[0] * 0.05 + 0.1)


def test_auto_preserves_when_widening_and_restandardises_otherwise():
    z = torch.randn(8, 32, dtype=torch.float64) * 0.3
    assert torch.equal(restore(z, 0.0, 0.05, "auto", 16, 32, widens=True),
                       restore(z, 0.0, 0.05, "preserve_function", 16, 32))
    assert torch.equal(restore(z, 0.0, 0.05, "auto", 32, 16, widens=False), restore(z, 0.0, 0.05, "source_std"))


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
def test_bot_doubling_the_width_keeps_the_function_by_default(family):
    """Haar upsampling duplicates every unit; ``auto`` then halves the weights reading them."""
    source = tiny_model(tiny_config(family, layers=2, heads=4, head_dim=4, intermediate=24, kv_heads=2))
    learngene = Learngene.extract(source, method="bot", show_progress=False)
    assert learngene.config.rescaling == "auto"
    grown = learngene.build({"hidden": 32, "heads": 8, "intermediate": 48}, auto_class=type(source),
                            show_progress=False)
    ids = torch.randint(1, 90, (2, 6))
    with torch.no_grad():
        source.eval(), grown.eval()
        before = source(input_ids=ids, output_hidden_states=True).hidden_states[-1]
        after = grown(input_ids=ids, output_hidden_states=True).hidden_states[-1]
    assert torch.allclose(after, before.repeat_interleave(2, dim=-1), atol=1e-4)


def test_kept_variance_divides_out_the_resize_s_own_variance_gain():
    """A Haar mean of pairs halves the variance of uncorrelated units: ``kept_variance`` scales the
    result by √2; a selection (gain 1) keeps the source's values; auto stands for it only where the
    method says so."""
    z = torch.randn(50, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(restore(z, 0.5, 2.0, "kept_variance", variance_gain=0.5), z * 2.0 * 2**0.5 + 0.5)
    assert torch.allclose(restore(z, 0.5, 2.0, "kept_variance"), z * 2.0 + 0.5)
    assert torch.allclose(restore(z, 0.5, 2.0, "auto", variance_gain=0.5, narrowing="kept_variance"),
                          z * 2.0 * 2**0.5 + 0.5)
    assert torch.allclose(restore(z, 0.5, 2.0, "auto"), restore(z, 0.5, 2.0, "source_std"))


def test_variance_gain_of_every_kind_of_operator():
    """Selections, BoT's sparse matrices and FRONT's FFT operators all report ``‖A‖²_F / out``, the
    last without writing the dense matrix out."""
    from hf_learngene import get_method
    from hf_learngene.methods import SignalSpec
    from hf_learngene.methods.base import mean_square_row, operator_matrix

    spec = SignalSpec(("intermediate",), (True,), (False,))
    for method, options in (("front", {}), ("bot", {"shrink": "wavelet"}), ("bot", {})):
        operator = get_method(method, **options).axis_operator(spec, 0, 600, 600, 250)
        dense = operator_matrix(operator, 600)
        assert abs(mean_square_row(operator, 600) - dense.square().sum().item() / 250) < 1e-9, (method, options)
