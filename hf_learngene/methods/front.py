"""FRONT: a learngene in the frequency domain (orthonormal DCT-II).

Along every resizable axis (layers included) the signal is taken to the DCT domain and only
the low-frequency block is stored. Building a model of another size keeps the first
``min(stored, target)`` coefficients, zero-pads the rest and inverts at the target length.
Truncating after padding returns the original, and at the source size with everything kept
the transform is the identity.

Paper: "One-for-All Model Initialization with Frequency-Domain Knowledge" (Shen, Feng, Xie
et al., ICML 2026). The authors z-score each tensor and restore its statistics afterwards;
that step is the shared rescaling policy here.

Options:
    keep: how many coefficients the learngene stores per resizable axis — a float ratio of
        the source size for every axis (default ``1.0``: lossless), or a dict mapping axis
        names (``"layers"``, ``"hidden"``, ``"heads"``, ``"head_dim"``, ``"intermediate"``, ...)
        to a ratio (float) or an absolute count (int). Unnamed axes keep everything; a name that is
        no resizable axis is refused. ``"head_dim"`` also sets the rotary layout's axes of queries,
        keys and their norms (``half_head_dim``, ``rotary_unit``: a count there is per head).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Mapping, Union

import scipy.fft
import torch

from ..errors import LearngeneConfigError
from ..architectures.base import RESIZABLE_AXES, is_resizable
from .base import AxisOperator, Resizer, SignalSpec, resize_blockwise
from .options import FrontOptions

Keep = Union[float, Mapping[str, Union[float, int]]]
ROTARY_AXES = ("half_head_dim", "rotary_unit")  # parts of a head in the rotary layout: they follow head_dim


@lru_cache(maxsize=8)  # small: one matrix at an LLM width is ~1 GB; the methods use the FFT below
def dct_matrix(n: int) -> torch.Tensor:
    """The orthonormal DCT-II matrix of length ``n`` (rows are frequencies), in float64, for
    short axes; long ones go through :func:`dct`."""
    i = torch.arange(n, dtype=torch.float64)
    k = i[:, None]
    matrix = torch.cos(math.pi * (2 * i[None, :] + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    matrix[0] /= math.sqrt(2.0)
    return matrix


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """torch.fft takes float32 and float64 everywhere; half types are computed in float32."""
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def _twiddles(
    n: int, factors: torch.Tensor, sign: int, dtype: torch.dtype, like: torch.Tensor, axis: int
) -> torch.Tensor:
    """``factors[k] · exp(sign · iπk / 2n)``, complex, shaped to broadcast along ``axis`` of
    ``like``; made in float64 on the CPU (not every device has float64) and then cast."""
    theta = torch.arange(len(factors), dtype=torch.float64) * (sign * math.pi / (2 * n))
    w = torch.polar(factors, theta).to(torch.complex128 if dtype == torch.float64 else torch.complex64)
    return w.to(like.device).reshape((-1,) + (1,) * (like.dim() - axis - 1))


def _along(axis: int, *index: slice) -> tuple[slice, ...]:
    return (slice(None),) * axis + index


def dct(x: torch.Tensor, axis: int, keep: int | None = None) -> torch.Tensor:
    """Orthonormal DCT-II along ``axis``, returning the first ``keep`` coefficients, in ``x``'s
    dtype (half types are computed in float32) and on its device.

    O(n log n) per fibre instead of the dense matrix's O(n²): on the CPU with ``scipy.fft``'s
    native real-to-real transform (no complex buffers; as many workers as torch has threads),
    elsewhere, and wherever a gradient must flow back (the spectral regulariser), with one
    ``torch.fft`` real FFT (:func:`dct_torch`).
    """
    axis %= x.dim()
    n = x.shape[axis]
    keep = keep or n
    if not _scipy_can_take(x):
        return dct_torch(x, axis, keep)
    signal = x.detach().to(_compute_dtype(x.dtype)).numpy()
    spectrum = torch.from_numpy(scipy.fft.dct(signal, type=2, axis=axis, norm="ortho", workers=_workers()))
    kept = spectrum[_along(axis, slice(0, keep))]
    return (kept if keep == n else kept.contiguous()).to(x.dtype)


def idct(
    coefficients: torch.Tensor, axis: int, length: int, scale: float = 1.0, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Orthonormal inverse DCT (DCT-III) along ``axis`` at ``length``, times ``scale``: the
    first coefficients are used, missing ones count as zeros, surplus ones are dropped.

    On the CPU ``scipy.fft.idct`` transforms the zero-padded (or truncated) coefficients in
    place: in ``out`` when it is a CPU buffer of the result's shape in the compute dtype (float32
    for half types), else in a new one; a float32/float64 input then gets that buffer back, a
    half one a converted copy. On other devices, and for a gradient, :func:`idct_torch`.
    """
    axis %= coefficients.dim()
    if not _scipy_can_take(coefficients):
        return idct_torch(coefficients, axis, length, scale)
    dtype = _compute_dtype(coefficients.dtype)
    shape = (*coefficients.shape[:axis], length, *coefficients.shape[axis + 1 :])
    if out is None or out.dtype != dtype or out.device.type != "cpu" or tuple(out.shape) != shape:
        out = torch.empty(shape, dtype=dtype)
    used = min(coefficients.shape[axis], length)
    out.narrow(axis, 0, used).copy_(coefficients.narrow(axis, 0, used))
    out.narrow(axis, used, length - used).zero_()
    buffer = out.numpy()
    result = scipy.fft.idct(buffer, type=2, axis=axis, norm="ortho", workers=_workers(), overwrite_x=True)
    if result.ctypes.data != buffer.ctypes.data:  # scipy copied after all (e.g. a strided buffer)
        out.copy_(torch.from_numpy(result))
    if scale != 1.0:
        out.mul_(scale)
    return out.to(coefficients.dtype)


def _workers() -> int:
    return max(1, torch.get_num_threads())


def _scipy_can_take(x: torch.Tensor) -> bool:
    """scipy computes on CPU memory, outside autograd."""
    return x.device.type == "cpu" and not (x.requires_grad and torch.is_grad_enabled())


def dct_torch(x: torch.Tensor, axis: int, keep: int) -> torch.Tensor:
    """:func:`dct` with ``torch.fft`` (any device): Makhoul's reordering (even samples, then odd
    ones reversed) turns the DCT-II into one real FFT of the same length, along the axis in place
    (no transposed copy)."""
    axis %= x.dim()
    n = x.shape[axis]
    dtype = _compute_dtype(x.dtype)
    signal = x.to(dtype)
    evens, odds = signal[_along(axis, slice(0, None, 2))], signal[_along(axis, slice(1, None, 2))]
    spectrum = torch.fft.rfft(torch.cat([evens, odds.flip(axis)], dim=axis), dim=axis)
    if keep > spectrum.shape[axis]:  # the bins rfft leaves out: V[k] = conj(V[n - k])
        mirror = spectrum[_along(axis, slice(1, (n + 1) // 2))].flip(axis).conj()
        spectrum = torch.cat([spectrum, mirror], dim=axis)
    factors = torch.full((keep,), math.sqrt(2.0 / n), dtype=torch.float64)
    factors[0] = math.sqrt(1.0 / n)
    out = torch.real(spectrum[_along(axis, slice(0, keep))] * _twiddles(n, factors, -1, dtype, signal, axis))
    return out.contiguous().to(x.dtype)


def idct_torch(coefficients: torch.Tensor, axis: int, length: int, scale: float = 1.0) -> torch.Tensor:
    """:func:`idct` with ``torch.fft`` (any device): the inverse of :func:`dct_torch`'s reordering.
    Half a spectrum ``(X[k] - i·X[n-k]) · exp(iπk/2n)`` is written straight from the
    coefficients (no zero-padded copy), then one inverse real FFT, then even samples from the
    front and odd ones from the back."""
    axis %= coefficients.dim()
    n = length
    used = min(coefficients.shape[axis], n)
    dtype = _compute_dtype(coefficients.dtype)
    x = coefficients.to(dtype)
    half = n // 2 + 1
    shape = list(x.shape)
    shape[axis] = half
    z = torch.zeros(shape + [2], dtype=dtype, device=x.device)  # real and imaginary parts
    low = min(used, half)
    z[_along(axis, slice(0, low)) + (..., 0)] = x[_along(axis, slice(0, low))]
    first = max(1, n - used + 1)  # the first k whose X[n - k] is stored
    if first < half:
        mirrored = x[_along(axis, slice(n - half + 1, n - first + 1))].flip(axis)  # X[n - k] for k ≥ first
        z[_along(axis, slice(first, half)) + (..., 1)] = mirrored.neg()
    factors = torch.full((half,), scale * math.sqrt(n / 2.0), dtype=torch.float64)  # 1 / s_k, and the scale
    factors[0] *= math.sqrt(2.0)
    v = torch.fft.irfft(torch.view_as_complex(z) * _twiddles(n, factors, 1, dtype, x, axis), n=n, dim=axis)
    evens = (n + 1) // 2
    out = torch.empty_like(v)
    out[_along(axis, slice(0, None, 2))] = v[_along(axis, slice(0, evens))]
    out[_along(axis, slice(1, None, 2))] = v[_along(axis, slice(evens, None))].flip(axis)
    return out.to(coefficients.dtype)


class ForwardDct(AxisOperator):
    """FRONT's encode of one axis: the first ``keep`` orthonormal DCT-II coefficients of a length-``length`` signal."""

    def __init__(self, length: int, keep: int):
        self.in_length = length
        self.out_length = keep

    def apply(self, x: torch.Tensor, axis: int, out: torch.Tensor | None = None) -> torch.Tensor:
        return dct(x, axis, self.out_length)


class InverseDct(AxisOperator):
    """FRONT's decode of one axis: the inverse DCT at ``target_length`` of the first
    ``min(stored, target)`` of ``stored_length`` coefficients of a length-``source_length`` signal.

    The factor ``sqrt(target/source)`` makes it a resampling: a constant keeps its value. It holds
    no matrix (the FFT needs none), so nothing is cached.
    """

    def __init__(self, stored_length: int, source_length: int, target_length: int):
        self.in_length = stored_length
        self.out_length = target_length
        self.scale = math.sqrt(target_length / source_length)

    def apply(self, x: torch.Tensor, axis: int, out: torch.Tensor | None = None) -> torch.Tensor:
        return idct(x, axis, self.out_length, self.scale, out)

    def __repr__(self) -> str:
        return f"InverseDct({self.in_length} → {self.out_length}, scale={self.scale:g})"


class FrontResizer(Resizer):
    name = "front"
    stores_blocks = False  # the layer axis holds DCT coefficients, even at keep 1.0

    def __init__(self, keep: Keep = FrontOptions.keep):
        if isinstance(keep, Mapping):
            bad = {k: v for k, v in keep.items() if not isinstance(v, (int, float)) or v <= 0}
        else:
            bad = {} if isinstance(keep, (int, float)) and 0 < keep <= 1 else {"keep": keep}
        if bad:
            raise LearngeneConfigError(
                f"FRONT keep must be a ratio in (0, 1] or a dict of axis → ratio (float) or count (int); got {bad}"
            )
        unknown = [name for name in keep if not is_resizable(name)] if isinstance(keep, Mapping) else []
        if unknown:  # a misspelt axis would silently keep everything
            valid = ", ".join(sorted(RESIZABLE_AXES - set(ROTARY_AXES)))
            raise LearngeneConfigError(
                f"FRONT keep names {', '.join(map(repr, unknown))}, which is no resizable axis; valid axes: {valid} "
                "(and channels0, channels1, ... for the levels of a UNet)"
            )
        self.keep = dict(keep) if isinstance(keep, Mapping) else float(keep)

    def options(self) -> dict[str, Any]:
        return {"keep": self.keep}

    def _kept(self, spec: SignalSpec, axis: int, length: int) -> int:
        """The coefficients stored along one axis. The rotary layout's axes (a head's halves, or its
        units) are parts of the head size and follow ``head_dim``'s rule, a count divided among the
        parts (the literal axis before them: 2 halves, or 8 units)."""
        name, parts = spec.axes[axis], 1
        if isinstance(self.keep, dict) and name in ROTARY_AXES and name not in self.keep:
            name, parts = "head_dim", int(spec.axes[axis - 1])
        rule = self.keep.get(name, 1.0) if isinstance(self.keep, dict) else self.keep
        count = math.ceil(rule / parts) if isinstance(rule, int) and not isinstance(rule, bool) else math.ceil(rule * length)
        return max(1, min(length, count))

    def stored_shape(self, spec, source_shape):
        return tuple(
            self._kept(spec, axis, n) if free else n for axis, (n, free) in enumerate(zip(source_shape, spec.resizable))
        )

    def encode(self, signal, spec, *, overwrite=False):
        operators = {
            axis: ForwardDct(signal.shape[axis], self._kept(spec, axis, signal.shape[axis]))
            for axis, free in enumerate(spec.resizable)
            if free
        }
        return resize_blockwise(signal, operators, overwrite)  # a 7B model's role is never copied whole into FFT buffers

    def axis_operator(self, spec, axis, stored_length, source_length, target_length):
        return InverseDct(stored_length, source_length, target_length)
