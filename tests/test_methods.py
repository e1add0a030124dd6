"""The resizing methods on their own: exactness, inverses, and the documented scheme."""

import math

import numpy as np
import pytest
import pywt
import torch

from hf_learngene import LearngeneConfigError, get_method
from hf_learngene.methods.bot import resize_matrix
from hf_learngene.methods.front import dct, dct_matrix

from hf_learngene.methods import SignalSpec

AXES = ["layers", "heads", "head_dim", "hidden"]
FREE = [True, True, True, True]


def spec(axes=AXES, resizable=FREE, inputs=None):
    return SignalSpec(tuple(axes), tuple(resizable), tuple(inputs or [False] * len(axes)))


SPEC = spec()


@pytest.fixture
def signal():
    torch.manual_seed(0)
    return torch.randn(6, 4, 8, 24, dtype=torch.float64)


@pytest.mark.parametrize("method", ["front", "bot"])
def test_identity_at_source_size(method, signal):
    resizer = get_method(method)
    stored = resizer.encode(signal, SPEC)
    assert torch.allclose(resizer.decode(stored, SPEC, signal.shape, signal.shape), signal, atol=1e-10)


def test_front_truncate_after_pad_returns_original(signal):
    front = get_method("front")
    grown = front.decode(front.encode(signal, SPEC), SPEC, signal.shape, (9, 5, 13, 40))
    back = front.decode(front.encode(grown, SPEC), SPEC, grown.shape, signal.shape)
    assert torch.allclose(back, signal, atol=1e-10)


@pytest.mark.parametrize("wavelet", ["haar", "db2", "sym3"])
def test_bot_shrink_after_grow_returns_original(wavelet, signal):
    """The wavelet's low-pass inverts its growth; so does keeping whole units after Haar's growth
    (the spread positions fall one in each block of copies), the default shrink."""
    for shrink in ("wavelet", "units") if wavelet == "haar" else ("wavelet",):
        bot = get_method("bot", wavelet=wavelet, shrink=shrink)
        grown = bot.decode(signal, SPEC, signal.shape, (12, 8, 32, 48))  # ×2, ×2, ×4, ×2
        back = bot.decode(grown, SPEC, grown.shape, signal.shape)
        assert torch.allclose(back, signal, atol=1e-10), shrink


def test_bot_haar_is_pair_mean_and_repeat():
    x = torch.arange(8.0, dtype=torch.float64)
    bot = get_method("bot", shrink="wavelet")  # the paper's low-pass
    one = spec(["hidden"], [True])
    assert torch.allclose(bot.decode(x, one, (8,), (4,)), torch.tensor([0.5, 2.5, 4.5, 6.5], dtype=torch.float64))
    assert torch.allclose(bot.decode(x[:2], one, (2,), (4,)), torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=torch.float64))
    # the raw Haar approximation is sqrt(2) × the pair mean; the method normalises it away
    approx = pywt.dwt(x.numpy(), "haar", mode="periodization")[0]
    assert np.allclose(approx, math.sqrt(2) * np.array([0.5, 2.5, 4.5, 6.5]))


def test_bot_matrix_matches_pywavelets_on_every_fibre():
    torch.manual_seed(0)
    x = torch.randn(5, 16, dtype=torch.float64)
    expected = pywt.dwt(pywt.dwt(x.numpy(), "db2", mode="periodization", axis=1)[0] / math.sqrt(2), "db2",
                        mode="periodization", axis=1)[0] / math.sqrt(2)
    got = x @ resize_matrix("db2", 16, 4).T
    assert np.allclose(got.numpy(), expected)


@pytest.mark.parametrize("method", ["front", "bot"])
@pytest.mark.parametrize("source,target", [(6, 4), (4, 6), (384, 256), (256, 384), (7, 3), (3, 10), (12, 1)])
def test_non_power_of_two_ratios_keep_constants(method, source, target):
    resizer = get_method(method)
    constant = torch.full((source, 3), 2.5, dtype=torch.float64)
    two = spec(["hidden", "vocab"], [True, False])
    out = resizer.decode(resizer.encode(constant, two), two, (source, 3), (target, 3))
    assert out.shape == (target, 3)
    assert torch.allclose(out, torch.full_like(out, 2.5))


def test_front_keeps_low_frequencies_only(signal):
    front = get_method("front", keep=0.5)
    stored = front.encode(signal, SPEC)
    assert stored.shape == (3, 2, 4, 12)
    full = dct(dct(dct(dct(signal, 0), 1), 2), 3)
    assert torch.allclose(stored, full[:3, :2, :4, :12], atol=1e-10)
    per_axis = get_method("front", keep={"hidden": 6, "layers": 0.5})
    assert per_axis.encode(signal, SPEC).shape == (3, 4, 8, 6)


def test_fixed_axes_pass_through(signal):
    for method in ("front", "bot"):
        resizer = get_method(method, **({"keep": 0.5} if method == "front" else {}))
        stored = resizer.encode(signal, spec(["vocab", "heads", "head_dim", "hidden"], [False, True, True, True]))
        assert stored.shape[0] == signal.shape[0]


def test_dct_matrix_is_orthonormal():
    matrix = dct_matrix(17)
    assert torch.allclose(matrix @ matrix.T, torch.eye(17, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize(
    "method,options,message",
    [
        ("front", {"keep": 0}, "ratio in \\(0, 1\\]"),
        ("front", {"keep": 1.5}, "ratio in \\(0, 1\\]"),
        ("bot", {"wavelet": "nope"}, "unknown wavelet 'nope'"),
        ("bot", {"wavelet": "bior2.2"}, "not orthogonal"),
        ("bot", {"levels": -1}, "non-negative"),
        ("front", {"wavelet": "haar"}, "bad option for method 'front'"),
        ("dct", {}, "choose one of front, bot, weight_selection"),
    ],
)
def test_bad_method_options(method, options, message):
    with pytest.raises(LearngeneConfigError, match=message):
        get_method(method, **options)
