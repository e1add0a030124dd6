import math

import pytest
import torch

from hf_learngene import LearngeneConfigError
from hf_learngene.methods.rescaling import restore, standardize


def test_standardize_then_restore_is_exact():
    torch.manual_seed(0)
    x = torch.randn(30, 20) * 0.05 + 1.0
    z, mean, std = standardize(x)
    for policy in ("source_std", "fan_in", "none"):
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
    with pytest.raises(LearngeneConfigError, match="source_std, fan_in, none"):
        restore(torch.zeros(3), 0.0, 1.0, "zscore")
