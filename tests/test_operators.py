"""FRONT's FFT and BoT's sparse axis operators against the dense matrices they replace.

The references are written here from the definitions (the orthonormal DCT matrix; PyWavelets
run on the identity, as the dense ``resize_matrix`` did), so that a fast operator cannot
agree with itself by construction.
"""

import math

import numpy as np
import pytest
import pywt
import torch
import torch.nn.functional as F

from hf_learngene.methods import bot
from hf_learngene.methods.base import AxisOperator, apply_along, operator_matrix
from hf_learngene.methods.bot import resize_operator
from hf_learngene.methods.front import InverseDct, dct, dct_matrix, dct_torch, idct, idct_torch

from hf_learngene import get_method
from hf_learngene.methods import SignalSpec


def dense_idct(stored: int, source: int, target: int) -> torch.Tensor:
    """FRONT's dense decode matrix: inverse DCT at the target of the first min(stored, target)
    coefficients, zero-padded, times sqrt(target/source)."""
    used = min(stored, target)
    basis = torch.zeros(target, stored, dtype=torch.float64)
    basis[:, :used] = dct_matrix(target)[:used].T * math.sqrt(target / source)
    return basis


def dense_wavelet(wavelet: str, source: int, target: int) -> torch.Tensor:
    """BoT's dense resize matrix, PyWavelets on the identity (the implementation it replaces)."""

    def resample(x, length):
        if x.shape[-1] == length:
            return x
        return F.interpolate(torch.from_numpy(np.ascontiguousarray(x))[None], size=length, mode="linear",
                             align_corners=True)[0].numpy()

    def levels(ratio):
        return max(0, math.ceil(math.log2(ratio) - 1e-9))

    x = np.eye(source)
    if target < source:
        k = levels(source / target)
        x = resample(x, target * 2**k)
        for _ in range(k):
            x = pywt.dwt(x, wavelet, mode="periodization", axis=-1)[0] / math.sqrt(2.0)
    else:
        for _ in range(levels(target / source)):
            x = pywt.idwt(x * math.sqrt(2.0), None, wavelet, mode="periodization", axis=-1)
        x = resample(x, target)
    return torch.from_numpy(np.ascontiguousarray(x.T))


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return ((got.double() - expected.double()).abs().max() / expected.double().abs().max().clamp_min(1e-300)).item()


TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}
SIZES = [(1, 1), (1, 5), (5, 1), (2, 7), (7, 3), (8, 4), (4, 8), (17, 16), (16, 17), (31, 12), (12, 31), (64, 160),
         (160, 64), (96, 32), (33, 132)]  # shrink and growth, whole and non-whole ratios, odd lengths, length 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("source,target", SIZES)
def test_front_decode_matches_dense(source, target, dtype):
    torch.manual_seed(0)
    for stored in sorted({1, max(1, source // 2), source}):
        x = torch.randn(3, stored, 4, dtype=torch.float64)
        for axis in range(3):
            signal = x.movedim(1, axis)
            op = InverseDct(stored, source, target)
            got = apply_along(signal.to(dtype), axis, op)
            assert got.dtype == dtype and got.shape[axis] == target
            expected = apply_along(signal, axis, dense_idct(stored, source, target))
            assert relative_error(got, expected) < TOLERANCE[dtype]
            # the torch.fft implementation (what runs on a GPU) and scipy's (the CPU) agree with the matrix
            on_gpu = idct_torch(signal.to(dtype), axis, target, math.sqrt(target / source))
            assert on_gpu.dtype == dtype and relative_error(on_gpu, expected) < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [1, 2, 3, 8, 17, 64, 101])
def test_front_encode_matches_dense(n, dtype):
    torch.manual_seed(0)
    x = torch.randn(4, 3, n, dtype=torch.float64)
    for axis in range(3):
        signal = x.movedim(2, axis)
        for keep in sorted({1, max(1, n // 2), n // 2 + 1, n} - {n + 1}):
            got = dct(signal.to(dtype), axis, keep)
            assert got.dtype == dtype
            expected = apply_along(signal, axis, dct_matrix(n)[:keep])
            assert relative_error(got, expected) < TOLERANCE[dtype]
            on_gpu = dct_torch(signal.to(dtype), axis, keep)
            assert on_gpu.dtype == dtype and relative_error(on_gpu, expected) < TOLERANCE[dtype]


@pytest.mark.parametrize("n", [1, 2, 9, 64])
def test_front_round_trip_is_identity(n):
    torch.manual_seed(0)
    x = torch.randn(n, 5, 3, dtype=torch.float64)
    for axis in range(3):
        length = x.shape[axis]
        back = apply_along(dct(x, axis), axis, InverseDct(length, length, length))
        assert torch.allclose(back, x, atol=1e-12)
    front = get_method("front", keep=1.0)
    spec = SignalSpec(("layers", "hidden", "heads"), (True, True, True), (False, False, False))
    assert torch.allclose(front.decode(front.encode(x, spec), spec, x.shape, x.shape), x, atol=1e-12)


def test_front_half_precision_runs_in_float32():
    x = torch.randn(6, 10).to(torch.bfloat16)
    got = idct(dct(x, 1), 1, 10)
    assert got.dtype == torch.bfloat16
    assert torch.allclose(got.float(), x.float(), atol=2e-2)


@pytest.mark.parametrize("wavelet", ["haar", "db2"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("source,target", [size for size in SIZES if size[0] != size[1]])
def test_bot_resize_matches_dense(wavelet, source, target, dtype):
    torch.manual_seed(0)
    op = resize_operator(wavelet, source, target)
    assert isinstance(op, AxisOperator) and (op.in_length, op.out_length) == (source, target)
    dense = dense_wavelet(wavelet, source, target)
    assert (operator_matrix(op, source) - dense).abs().max() < 1e-10
    x = torch.randn(3, source, 4, dtype=torch.float64)
    for axis in range(3):
        signal = x.movedim(1, axis)
        got = apply_along(signal.to(dtype), axis, op)
        assert got.dtype == dtype and got.shape[axis] == target
        assert relative_error(got, apply_along(signal, axis, dense)) < TOLERANCE[dtype]


@pytest.mark.parametrize("wavelet", ["haar", "db2", "sym3"])
def test_bot_long_axis_is_sparse_and_matches_pywavelets(wavelet):
    """An MLP-wide axis: the operator has a few entries per row, and agrees with the scheme run
    directly with PyWavelets on a few fibres (no dense n × n matrix anywhere)."""
    torch.manual_seed(0)
    for source, target in [(11008, 4096), (4096, 11008)]:
        op = resize_operator(wavelet, source, target)
        assert op.matrix.values().numel() < 64 * max(source, target)
        x = torch.randn(2, source, dtype=torch.float64)
        expected = torch.from_numpy(bot.resize_signals(x.numpy(), wavelet, target))
        assert (apply_along(x, 1, op) - expected).abs().max() < 1e-10


def test_bot_cache_stays_within_its_bound(monkeypatch):
    monkeypatch.setattr(bot, "CACHE_BYTES", 3_000_000)
    monkeypatch.setattr(bot, "_cache", type(bot._cache)())
    for n in range(500, 1500, 50):
        resize_operator("db2", n, 3 * n)
        assert bot.cached_bytes() <= 3_000_000
    assert 1 < len(bot._cache) < 20  # old entries left, recent ones kept
    assert ("db2", 1450, 4350, "linear", False) in bot._cache


def test_dct_matrix_cache_is_bounded():
    assert dct_matrix.cache_info().maxsize <= 16


def test_operator_matrix_of_dense_and_operators():
    dense = torch.randn(3, 5, dtype=torch.float64)
    assert torch.equal(operator_matrix(dense, 5), dense)
    assert torch.allclose(operator_matrix(InverseDct(4, 6, 9), 4), dense_idct(4, 6, 9), atol=1e-12)
    with pytest.raises(ValueError):
        operator_matrix(InverseDct(4, 6, 9), 5)


@pytest.mark.parametrize("shape,targets", [((6, 10, 12), (4, 20, 7)), ((6, 10, 12), (9, 5, 12)), ((1, 7), (3, 7)),
                                           ((8,), (3,))])
def test_blockwise_resizing_equals_resizing_whole(shape, targets, monkeypatch):
    """Tiny blocks (a few slices or columns each) give the values of applying each operator to the whole tensor."""
    from hf_learngene.methods import base
    from hf_learngene.methods.bot import resize_operator
    from hf_learngene.methods.front import InverseDct

    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64)
    operators = {}
    for axis, (n, m) in enumerate(zip(shape, targets)):
        if n != m:
            operators[axis] = InverseDct(n, n, m) if axis % 2 else resize_operator("db2", n, m)
    expected = x
    for axis, operator in operators.items():
        expected = base.apply_along(expected, axis, operator)
    whole = base.resize_blockwise(x.clone(), operators)  # small: resized whole, axes in operator_order
    monkeypatch.setattr(base, "BLOCK_BYTES", 3 * 8 * 12)
    monkeypatch.setattr(base, "WHOLE_BYTES", 0)  # every tensor piecewise
    source = x.clone()
    got = base.resize_blockwise(source, operators)
    assert got.shape == whole.shape == expected.shape
    assert torch.equal(source, x)  # without overwrite=True the input is left as it was
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(whole, expected, rtol=0, atol=1e-12)
    overwritten = base.resize_blockwise(x.clone(), operators, overwrite=True)
    torch.testing.assert_close(overwritten, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("stored,target", [(5, 9), (9, 5), (8, 8)])
def test_idct_computes_in_the_buffer_it_is_given(stored, target):
    torch.manual_seed(0)
    x = torch.randn(4, stored, 3)
    buffer = torch.full((4, target, 3), float("nan"))  # stale values must not leak into the result
    got = idct(x, 1, target, 1.5, out=buffer)
    assert got.data_ptr() == buffer.data_ptr()
    torch.testing.assert_close(got, idct(x, 1, target, 1.5), rtol=0, atol=1e-6)
    wrong_shape = torch.empty(2, 2)
    torch.testing.assert_close(idct(x, 1, target, 1.5, out=wrong_shape), got, rtol=0, atol=1e-6)


@pytest.mark.parametrize("method", ["front", "bot"])
@pytest.mark.parametrize("source,target", [((6, 10, 12), (4, 20, 7)), ((6, 10, 12), (9, 5, 12)), ((3, 8, 8), (3, 8, 8))])
def test_decoding_layer_by_layer_equals_decoding_whole(method, source, target):
    """Layer mixing by groups of target layers, over only the stored layers the layer matrix
    uses, and buffers reused from layer to layer give the whole decode's values."""
    from hf_learngene.methods import base

    torch.manual_seed(0)
    resizer = get_method(method)
    spec = SignalSpec(("layers", "hidden", "intermediate"), (True, True, True), (False, False, True))
    stored = resizer.encode(torch.randn(source), spec)
    whole = resizer.decode(stored, spec, source, target)
    one_by_one = torch.stack(list(resizer.decode_layers(stored, spec, source, target)))
    reused = torch.stack([z.clone() for z in resizer.decode_layers(stored, spec, source, target, reuse_buffers=True)])
    torch.testing.assert_close(one_by_one, whole, rtol=0, atol=1e-5)
    torch.testing.assert_close(reused, one_by_one, rtol=0, atol=0)
    old = base.MIX_BYTES
    try:  # one target layer per pass over the stored role
        base.MIX_BYTES = 1
        torch.testing.assert_close(torch.stack(list(resizer.decode_layers(stored, spec, source, target))), whole,
                                   rtol=0, atol=1e-5)
    finally:
        base.MIX_BYTES = old


@pytest.mark.parametrize("method", ["front", "bot"])
def test_encoding_in_place_gives_the_same_learngene(method, monkeypatch):
    """``overwrite=True`` (what extraction passes) computes in the role's own memory: FRONT at
    keep=1 holds no second copy of the role, and the values are those of a copying encode."""
    from hf_learngene.methods import base

    monkeypatch.setattr(base, "BLOCK_BYTES", 4 * 40)  # many pieces
    torch.manual_seed(0)
    resizer = get_method(method, **({"levels": 1} if method == "bot" else {}))  # BoT's default stores the source
    spec = SignalSpec(("layers", "hidden", "intermediate"), (True, True, True), (False, False, True))
    signal = torch.randn(6, 10, 12)
    expected = resizer.encode(signal.clone(), spec)
    consumed = signal.clone()
    got = resizer.encode(consumed, spec, overwrite=True)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    if method == "bot":
        assert got.shape == (3, 5, 6)  # one level halves every resizable axis: the operators ran
    if method == "front":
        assert got.untyped_storage().data_ptr() == consumed.untyped_storage().data_ptr()


def test_the_dct_passes_gradients_on_the_cpu():
    """scipy computes outside autograd: a tensor that needs a gradient (the spectral regulariser's
    weights) goes through torch.fft, with the same values."""
    torch.manual_seed(0)
    x = torch.randn(6, 8, dtype=torch.float64, requires_grad=True)
    low = dct(x, 1, 3)
    assert low.requires_grad
    low.square().sum().backward()
    matrix = dct_matrix(8)[:3]
    expected_grad = 2 * (x.detach() @ matrix.T) @ matrix
    torch.testing.assert_close(x.grad, expected_grad, rtol=0, atol=1e-10)
    back = idct(low, 1, 8)
    assert back.requires_grad
    with torch.no_grad():
        torch.testing.assert_close(low, dct(x, 1, 3), rtol=0, atol=1e-12)
