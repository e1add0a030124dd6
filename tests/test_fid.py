"""The Fréchet distance against closed forms."""

import pytest
import torch

from hf_learngene.evaluation import frechet_distance


def test_identical_sets_are_at_distance_zero():
    x = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_shifted_and_scaled_gaussians_match_the_closed_form():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(200_000, 3, generator=generator)
    b = torch.randn(200_000, 3, generator=generator) * 2 + torch.tensor([1.0, 0.0, -1.0])
    # μ term: 1 + 0 + 1 = 2; Σ term per dimension: 1 + 4 − 2·√4 = 1, three dimensions → 3
    assert frechet_distance(a, b) == pytest.approx(5.0, rel=0.02)


def test_bad_shapes():
    with pytest.raises(ValueError, match="same D"):
        frechet_distance(torch.zeros(5, 3), torch.zeros(5, 4))
    with pytest.raises(ValueError, match="at least 2 samples"):
        frechet_distance(torch.zeros(1, 3), torch.zeros(5, 3))
