"""BoT: bidirectional transfer by discrete wavelets (PyWavelets, ``periodization`` mode).

Shrinking an axis keeps the approximation band of a wavelet decomposition, one level per
halving; growing inverts with zero detail bands, one level per doubling. Both are
parameter-free, and shrink-after-grow returns the original. With Haar, one shrink level is
the mean of adjacent pairs and one grow level repeats every entry (a 2-D grow of a matrix is
``kron(W, ones(2, 2))`` before rescaling).

Paper: "A Unified Framework for Knowledge Transfer in Bidirectional Model Scaling" (Shen,
Feng, Xu et al., CVPR 2026). No public code; the choices below are ours.

Non-power-of-two ratios (a documented scheme, never a refusal): with ``k = ceil(log2(ratio))``
levels, a shrink ``n → m`` first resamples the axis linearly to ``m·2^k`` (≥ n) and then takes
``k`` approximation levels; a grow ``n → m`` takes ``k`` inverse levels to ``n·2^k`` (≥ m) and
then resamples linearly down to ``m``. The wavelet does the dyadic part; linear resampling only
covers the remaining factor below 2.

That is ``non_dyadic="linear"``. Interpolating between neighbouring units blends units that
have nothing in common (a trained model's units have no order), so the default,
``non_dyadic="split"``, does the remainder with whole units: ``k = floor(log2(ratio))`` wavelet
levels, and the factor left (below 2) copies or drops whole units, evenly spread (target unit
``j`` is unit ``floor((j + 1/2) · n / m)`` of the level's output). Growing, every unit then has
``⌊m/n⌋`` or ``⌈m/n⌉`` copies; along an input (fan-in) axis each copy carries
``(m/n) / copies`` of its unit's weight (a kept unit of a shrinking axis ``m/n`` of it, a dropped
one nothing), so that after ``preserve_function``'s division by the fan-in ratio the copies of a
unit sum to its weight whatever the other axes do. The keys' head size is shared the same way
(``SignalSpec.attention_keys``), so a dot product over copied head dimensions counts each source
dimension once, times the ratio that the ``k^(-1/4)`` factors of ``preserve_function`` take back:
the attention logits are kept at any head-size ratio, in the families whose tables mark their
keys (flat-head attentions: BERT, DistilBERT, RoBERTa, ViT, DiT; not GPT-2's fused projection, the
UNet's attention or rotary heads, whose frequencies follow the head size anyway). The shares are part of the decoded signal
whatever the policy (under ``none`` copies along an input axis carry their share, not the
source's value); only ``preserve_function`` makes the build exact. Whole heads (every role the
table marks ``whole_heads``: Llama-family models, grouped or not, GPT-NeoX, ModernBERT) are stored
split by key/value head (``levels=0``) and, where the grouping is kept and the key/value heads do not
get fewer, decoded as (key/value heads × query heads per key/value head), ``split`` on the key/value
axis with the group size fixed: 4 heads / 2 → 6 / 3 copies groups 0, 1, 1, as the key/value heads, so
every query head keeps its keys. Elsewhere (a grouping that changes, fewer key/value heads, stored
bands) the query heads keep ``linear``: copying or dropping query heads and key/value heads each on
its own axis could give a query head another group's keys. A key/value axis that grows is ``split``
whatever the grouping (its roles do not see the source's grouping); at power-of-two ratios that is
``linear``'s result too. With Haar this keeps the source's function at any
width ratio for every linear map and every elementwise activation (384 → 512 hidden units:
128 units copied twice); a LayerNorm over a grown width sees its copied units twice in its mean
and variance, so it keeps the function nearly, not exactly. With ``shrink="wavelet"``,
shrinking drops whole units where the ratio is not a power of two (12 heads → 8 keeps 8 of them whole; 4L/256 from 6L/384 keeps
256 of the hidden units) and averages neighbours only for the power-of-two part. At power-of-two
ratios both schemes are the same. Encoding (``levels``) always uses ``linear``, so the stored
bands do not depend on this option.

Shrinking (``shrink="units"``, the default) keeps whole units on every narrowing axis instead of
low-passing: a trained model's units are neither alike nor ordered, so an average of neighbours
mixes units that have nothing in common. The hidden (residual) axis keeps the units with the
largest norm gains (:attr:`~hf_learngene.Learngene.hidden_ranking`: ``sqrt(weight² + bias²)`` of
every norm over the hidden axis, summed), read from the stored norms, so it needs no data and no
extra storage; a model without a norm over its hidden axis keeps evenly spaced units there. Flat
heads (no ``head_groups``) that get fewer and larger become whole source heads side by side
(:meth:`BotResizer.regroup`). Every other axis keeps evenly spaced units, where weight
selection takes them (every k-th from the first at a whole ratio); grouped heads keep the
``linear`` scheme above. The ``auto`` rescaling of a narrowing tensor is then ``kept_variance``
(:attr:`BotResizer.narrowing_policy`): the kept weights stay the source's. ``shrink="wavelet"``
is the paper's low-pass (with ``non_dyadic="linear"``, its whole scheme), rescaled by
``source_std``; learngenes saved before the option existed decode with it. A build that only
grows is the same under both (an axis that shrinks inside a growing build follows the option), and
with Haar a shrink of either kind after a growth returns the original.

Every level is normalised by ``1/sqrt(2)`` (the lowpass gain of an orthogonal wavelet), so a
constant signal keeps its value, as for every method (see :mod:`.base`).

Options:
    wavelet: any discrete orthogonal wavelet PyWavelets knows (default ``"haar"``).
    levels: decomposition levels applied to every resizable axis before storing (default 0:
        the learngene keeps the source signal; each level halves the stored size).
    non_dyadic: ``"split"`` (default) or ``"linear"``, the scheme for ratios that are not powers
        of two (above).
    shrink: ``"units"`` (default) or ``"wavelet"``, how a narrower model takes its units (above).
"""

from __future__ import annotations

import math
import threading
import warnings
from collections import OrderedDict
from dataclasses import replace
from typing import Any

import numpy as np
import pywt
import scipy.sparse as sp
import torch
import torch.nn.functional as F

# torch warns once that its CSR tensors are "beta"; the products used here are long established
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state", category=UserWarning)

from ..errors import LearngeneConfigError
from .base import AxisOperator, Gather, Resizer, SignalSpec, heads_by_kv_head, operator_matrix, resize_blockwise
from .options import NON_DYADIC, SHRINK_SCHEMES, BotOptions
from .weight_selection import GROUP_AXES, selected_indices, split_heads_axis


def _linear_resample(x: torch.Tensor, length: int) -> torch.Tensor:
    """Resample the rows of a 2-D tensor linearly to ``length`` columns (end points kept)."""
    if x.shape[-1] == length:
        return x
    return F.interpolate(x[None], size=length, mode="linear", align_corners=True)[0]


def _levels_for(ratio: float) -> int:
    return max(0, math.ceil(math.log2(ratio) - 1e-9))


def _nearest_units(source_length: int, target_length: int) -> np.ndarray:
    """For every target unit, the whole source unit it is (``split``): copies or drops evenly spread."""
    return np.minimum(((np.arange(target_length) + 0.5) * source_length / target_length).astype(np.int64),
                      source_length - 1)


def _split_levels(ratio: float) -> int:
    return max(0, math.floor(math.log2(ratio) + 1e-9))


def resize_signals(x: np.ndarray, wavelet: str, target_length: int, non_dyadic: str = "linear") -> np.ndarray:
    """The scheme itself, with PyWavelets on the rows of a 2-D float64 array: what
    :func:`resize_operator`'s sparse matrix is checked against (before ``split``'s fan-in share)."""
    source_length = x.shape[-1]
    if non_dyadic == "split" and target_length < source_length:
        levels = _split_levels(source_length / target_length)
        x = x[:, _nearest_units(source_length, target_length * 2**levels)]
        for _ in range(levels):
            x = pywt.dwt(x, wavelet, mode="periodization", axis=-1)[0] / math.sqrt(2.0)
        return x
    if non_dyadic == "split" and target_length > source_length:
        levels = _split_levels(target_length / source_length)
        for _ in range(levels):
            x = pywt.idwt(x * math.sqrt(2.0), None, wavelet, mode="periodization", axis=-1)
        return x[:, _nearest_units(x.shape[-1], target_length)]
    if target_length < source_length:
        levels = _levels_for(source_length / target_length)
        x = _linear_resample(torch.from_numpy(x), target_length * 2**levels).numpy()
        for _ in range(levels):
            x = pywt.dwt(x, wavelet, mode="periodization", axis=-1)[0] / math.sqrt(2.0)
    elif target_length > source_length:
        for _ in range(_levels_for(target_length / source_length)):
            x = pywt.idwt(x * math.sqrt(2.0), None, wavelet, mode="periodization", axis=-1)
        x = _linear_resample(torch.from_numpy(np.ascontiguousarray(x)), target_length).numpy()
    return x


def _resample_matrix(source_length: int, target_length: int) -> sp.csr_matrix:
    """The (target × source) matrix of :func:`_linear_resample`: two taps per row.

    The tap positions are read off :func:`_linear_resample` of the ramp 0, 1, ..., n - 1 rather
    than computed here: PyTorch rounds them at about float32 precision (off by up to 3e-4 of a sample
    at 16384 → 11008), and the matrix must be the very operator it replaces.
    """
    ramp = torch.arange(source_length, dtype=torch.float64)[None]
    position = _linear_resample(ramp, target_length)[0].numpy()
    left = np.minimum(np.floor(position).astype(np.int64), source_length - 1)
    weight = position - left
    right = np.minimum(left + 1, source_length - 1)
    rows = np.arange(target_length)
    return sp.csr_matrix(
        (np.concatenate([1 - weight, weight]), (np.concatenate([rows, rows]), np.concatenate([left, right]))),
        shape=(target_length, source_length),
    )


def _analysis_matrix(wavelet: str, length: int) -> sp.csr_matrix:
    """One approximation level on an even ``length`` (÷ sqrt(2)), as a (length/2 × length) matrix.

    Periodization on an even length is a periodic convolution: moving the input by two moves
    the output by one. So PyWavelets runs on the two unit signals e0 and e1 only, and column
    2s + p is the response to e_p rolled by s.
    """
    half = length // 2
    probes = pywt.dwt(np.eye(2, length), wavelet, mode="periodization", axis=-1)[0] / math.sqrt(2.0)
    shifts = np.arange(half)
    rows, cols, values = [], [], []
    for phase in (0, 1):
        (taps,) = np.nonzero(probes[phase])
        rows.append(((taps[:, None] + shifts) % half).ravel())
        cols.append(np.broadcast_to(phase + 2 * shifts, (len(taps), half)).ravel())
        values.append(np.repeat(probes[phase, taps], half))
    return sp.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(half, length))


def _synthesis_matrix(wavelet: str, length: int) -> sp.csr_matrix:
    """One inverse level with zero details (× sqrt(2)), as a (2·length × length) matrix: moving
    the input by one moves the output by two, so column s is the response to e0 rolled by 2s."""
    probe = pywt.idwt(np.eye(1, length) * math.sqrt(2.0), None, wavelet, mode="periodization", axis=-1)[0]
    (taps,) = np.nonzero(probe)
    shifts = np.arange(length)
    rows = ((taps[:, None] + 2 * shifts) % (2 * length)).ravel()
    cols = np.broadcast_to(shifts, (len(taps), length)).ravel()
    return sp.csr_matrix((np.repeat(probe[taps], length), (rows, cols)), shape=(2 * length, length))


class WaveletResize(AxisOperator):
    """BoT's resize of one axis as a sparse (target × source) matrix: every step of the scheme
    is banded, so the whole resize has O(filter · 2^levels) entries per row, where the dense
    matrix has ``source_length``. Kept in float64 (COO, on the CPU), cast to the input's dtype
    and moved to its device on use."""

    def __init__(self, matrix: torch.Tensor):
        self.matrix = matrix
        self.out_length, self.in_length = matrix.shape
        # the transpose as CSR, for the CPU's dense @ sparse product along the last axis
        self._transposed = {torch.float64: matrix.t().coalesce().to_sparse_csr()}

    def transposed(self, dtype: torch.dtype) -> torch.Tensor:
        if dtype not in self._transposed:  # made once per dtype (the same values if two threads race)
            self._transposed[dtype] = self._transposed[torch.float64].to(dtype)
        return self._transposed[dtype]

    @property
    def nbytes(self) -> int:
        tensors = [self.matrix.indices(), self.matrix.values()]
        for csr in self._transposed.values():
            tensors += [csr.crow_indices(), csr.col_indices(), csr.values()]
        return sum(t.numel() * t.element_size() for t in tensors)

    def apply(self, x: torch.Tensor, axis: int, out: torch.Tensor | None = None) -> torch.Tensor:
        dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32  # no half sparse kernels
        axis %= x.dim()
        if axis == x.dim() - 1 and x.device.type == "cpu":
            # the contiguous axis: rows times the transposed matrix (dense @ CSR), with no transposed
            # copy of the input and a result already in the input's layout
            rows = x.reshape(-1, self.in_length).to(dtype)
            return torch.mm(rows, self.transposed(dtype)).reshape(*x.shape[:-1], self.out_length).to(x.dtype)
        matrix = self.matrix.to(dtype=dtype).to(device=x.device)
        moved = x.movedim(axis, 0)
        rest = moved.shape[1:]
        flat = moved.reshape(self.in_length, math.prod(rest)).to(dtype)
        return (matrix @ flat).reshape(self.out_length, *rest).to(x.dtype).movedim(0, axis)

    def __repr__(self) -> str:
        return f"WaveletResize({self.in_length} → {self.out_length}, {self.matrix.values().numel()} entries)"


def _nearest_matrix(source_length: int, target_length: int) -> sp.csr_matrix:
    """The (target × source) 0/1 matrix of :func:`_nearest_units`."""
    return sp.csr_matrix((np.ones(target_length), (np.arange(target_length), _nearest_units(source_length, target_length))),
                         shape=(target_length, source_length))


def _fan_in_shares(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """``matrix`` with every column that is not all zero scaled to sum to ``target / source``: along
    an input axis the copies of a unit share its weight and a dropped unit has none
    (``preserve_function`` then divides by the fan-in ratio)."""
    target_length, source_length = matrix.shape
    sums = np.asarray(matrix.sum(axis=0)).ravel()
    scale = np.divide(target_length / source_length, sums, out=np.zeros_like(sums), where=np.abs(sums) > 1e-12)
    return sp.csr_matrix(matrix @ sp.diags(scale))


def _build_split(wavelet: str, source_length: int, target_length: int) -> sp.csr_matrix:
    """``split``'s matrix: the power-of-two part by wavelet levels, the rest by whole units."""
    if target_length < source_length:
        levels = _split_levels(source_length / target_length)
        length = target_length * 2**levels
        matrix = _nearest_matrix(source_length, length)
        for _ in range(levels):
            matrix = _analysis_matrix(wavelet, length) @ matrix
            length //= 2
        return matrix
    matrix = sp.identity(source_length, format="csr")
    length = source_length
    for _ in range(_split_levels(target_length / source_length)):
        matrix = _synthesis_matrix(wavelet, length) @ matrix
        length *= 2
    return _nearest_matrix(length, target_length) @ matrix


def _build(wavelet: str, source_length: int, target_length: int, non_dyadic: str = "linear",
           fan_in: bool = False) -> WaveletResize:
    """The scheme's matrix, level by level in sparse form: memory and time O(n · filter · 2^levels),
    never an n × n identity. Checked once against PyWavelets on a random signal. ``fan_in``: the
    axis is an input axis of the role, whose copies share their unit's weight (``split`` only)."""
    if non_dyadic == "split":
        matrix = _build_split(wavelet, source_length, target_length)
    elif target_length < source_length:
        levels = _levels_for(source_length / target_length)
        length = target_length * 2**levels
        matrix = sp.identity(length, format="csr")
        if length != source_length:
            matrix = _resample_matrix(source_length, length)
        for _ in range(levels):
            matrix = _analysis_matrix(wavelet, length) @ matrix
            length //= 2
    else:
        matrix = sp.identity(source_length, format="csr")
        length = source_length
        for _ in range(_levels_for(target_length / source_length)):
            matrix = _synthesis_matrix(wavelet, length) @ matrix
            length *= 2
        if length != target_length:
            matrix = _resample_matrix(length, target_length) @ matrix
    matrix = sp.csr_matrix(matrix)
    probe = np.random.default_rng(0).standard_normal((1, source_length))
    if not np.allclose(matrix @ probe[0], resize_signals(probe, wavelet, target_length, non_dyadic)[0], rtol=0,
                       atol=1e-10):
        raise RuntimeError(f"BoT's sparse {wavelet} resize {source_length} → {target_length} disagrees with pywt")
    if fan_in and non_dyadic == "split":
        matrix = _fan_in_shares(matrix)
    matrix.eliminate_zeros()
    matrix.sort_indices()
    coo = matrix.tocoo()  # COO, not CSR: the same speed here, and no "beta" warning in the user's log
    indices = torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data.astype(np.float64))
    return WaveletResize(torch.sparse_coo_tensor(indices, values, coo.shape, is_coalesced=True, check_invariants=True))


# A least-recently-used cache bounded by bytes, not entries: an operator's size grows with its
# axis (an LLM's MLP axis holds tens of thousands of rows), a count bound would not bound memory.
CACHE_BYTES = 256 * 2**20
_cache: OrderedDict[tuple[str, int, int, str, bool], WaveletResize] = OrderedDict()
_cache_lock = threading.Lock()


def cached_bytes() -> int:
    """What the operator cache holds now, in bytes."""
    with _cache_lock:
        return sum(op.nbytes for op in _cache.values())


def resize_operator(wavelet: str, source_length: int, target_length: int, non_dyadic: str = "linear",
                    fan_in: bool = False) -> WaveletResize:
    """The sparse operator of one axis resize ``source_length → target_length``, cached (at most
    :data:`CACHE_BYTES` in all; the least recently used go first, the newest always stays)."""
    fan_in = fan_in and non_dyadic == "split"  # the only scheme it changes
    key = (wavelet, source_length, target_length, non_dyadic, fan_in)
    with _cache_lock:
        op = _cache.pop(key, None)
    if op is None:
        op = _build(wavelet, source_length, target_length, non_dyadic, fan_in)
    with _cache_lock:
        _cache[key] = op
        total = sum(entry.nbytes for entry in _cache.values())
        while total > CACHE_BYTES and len(_cache) > 1:
            total -= _cache.popitem(last=False)[1].nbytes
    return op


def resize_matrix(wavelet: str, source_length: int, target_length: int, non_dyadic: str = "linear",
                  fan_in: bool = False) -> torch.Tensor:
    """The dense (target × source) matrix of one axis resize, in float64, for short axes."""
    return operator_matrix(resize_operator(wavelet, source_length, target_length, non_dyadic, fan_in), source_length)


class BotResizer(Resizer):
    name = "bot"

    def __init__(self, wavelet: str = BotOptions.wavelet, levels: int = BotOptions.levels,
                 non_dyadic: str = BotOptions.non_dyadic, shrink: str = BotOptions.shrink):
        try:
            self._wavelet = pywt.Wavelet(wavelet)
        except ValueError:
            raise LearngeneConfigError(
                f"unknown wavelet '{wavelet}'; choose a discrete wavelet from pywt.wavelist(kind='discrete'), "
                "e.g. haar, db2, sym4"
            ) from None
        if not self._wavelet.orthogonal:
            raise LearngeneConfigError(f"wavelet '{wavelet}' is not orthogonal; BoT needs an orthogonal wavelet (haar, dbN, symN)")
        if not isinstance(levels, int) or levels < 0:
            raise LearngeneConfigError(f"levels must be a non-negative integer, got {levels!r}")
        if non_dyadic not in NON_DYADIC:
            raise LearngeneConfigError(f"non_dyadic must be one of {', '.join(NON_DYADIC)}, got {non_dyadic!r}")
        if shrink not in SHRINK_SCHEMES:
            raise LearngeneConfigError(f"shrink must be one of {', '.join(SHRINK_SCHEMES)}, got {shrink!r}")
        self.wavelet = wavelet
        self.levels = levels
        self.non_dyadic = non_dyadic
        self.shrink = shrink

    @property
    def ranks_hidden_units(self) -> bool:
        return self.shrink == "units"

    @property
    def narrowing_policy(self) -> str:
        """``kept_variance`` with the default shrink, which keeps whole units where it can (no variance
        to restore there, and the kept units' own scale is the right one); ``source_std`` for the
        paper's low-pass of every axis."""
        return "kept_variance" if self.shrink == "units" else "source_std"

    def options(self) -> dict[str, Any]:
        return {"wavelet": self.wavelet, "levels": self.levels, "non_dyadic": self.non_dyadic,
                "shrink": self.shrink}

    def stored_shape(self, spec, source_shape):
        if self.levels == 0:  # the source signal, grouped heads split by key/value head (the source's grouping)
            return heads_by_kv_head(spec, source_shape)
        return tuple(
            max(1, math.ceil(n / 2**self.levels)) if free else n for n, free in zip(source_shape, spec.resizable)
        )

    def encode(self, signal, spec, *, overwrite=False):
        if self.levels == 0:
            return signal.reshape(self.stored_shape(spec, signal.shape))
        stored = self.stored_shape(spec, signal.shape)
        operators = {  # the stored bands are always the linear scheme's, whatever ``non_dyadic`` decodes with
            axis: resize_operator(self.wavelet, signal.shape[axis], stored[axis])
            for axis, free in enumerate(spec.resizable)
            if free and signal.shape[axis] != stored[axis]
        }
        return resize_blockwise(signal, operators, overwrite)

    def copies_groups(self, spec: SignalSpec, axis: int, stored_length: int, target_length: int) -> bool:
        """Whether a head axis of grouped (whole) heads is resized by whole units (``split``): the
        key/value axis where it does not shrink, in a learngene that stores the source's heads
        (``levels=0``). Where the grouping is kept, a query role's heads are decoded as (key/value
        heads × query heads per key/value head) (:meth:`regroup`) with the group size fixed, so every
        query head is copied with its group, as its key/value head is, and the output projection's
        shares keep the function. Elsewhere (a key/value axis that shrinks, stored bands, and for
        query heads a grouping that changes) the head axes take ``linear``: copying or dropping query
        heads and key/value heads each on its own axis could give a query head another group's keys.
        A key/value axis that grows is copied whole whatever the grouping: its roles do not see the
        source's grouping."""
        name = spec.axes[axis]
        if spec.head_groups is None or self.non_dyadic != "split" or self.levels or name not in GROUP_AXES:
            return False
        return name == "heads_per_kv" or target_length >= stored_length

    def scheme(self, spec: SignalSpec, axis: int, stored_length: int, target_length: int) -> str:
        """The non-dyadic scheme of one axis: ``linear`` for the head axes of grouped heads that are not
        copied whole (:meth:`copies_groups`), the option otherwise."""
        if self._linear_heads(spec, axis, stored_length, target_length):
            return "linear"
        return self.non_dyadic

    def _linear_heads(self, spec: SignalSpec, axis: int, stored_length: int, target_length: int) -> bool:
        head_axis = spec.head_groups is not None and spec.axes[axis] in ("heads", *GROUP_AXES)
        return head_axis and not self.copies_groups(spec, axis, stored_length, target_length)

    @staticmethod
    def shares(spec: SignalSpec, axis: int) -> bool:
        """Whether the copies along this axis share their unit's weight: an input (fan-in) axis, and
        the head size of the keys (so that a dot product over copied dimensions counts each once)."""
        return spec.inputs[axis] or (spec.attention_keys and spec.axes[axis] == "head_dim")

    def regroup(self, spec, stored_shape, source_shape, target_shape):
        """``shrink="units"`` on flat heads (BERT, ViT, DiT: no ``head_groups``) whose count shrinks
        while their size grows (12 of 32 → 4 of 64): the ``heads`` and ``head_dim`` axes as one flat
        axis, so that each target head is whole source heads side by side (8 of the 12 here, evenly
        spread) rather than an average of heads with every dimension doubled. Returns ``(spec,
        stored, source, target)`` shapes merged, or ``None`` where the axes stay apart.

        Grouped heads stored split by key/value head (:meth:`stored_shape`) are resized on those two
        axes where the key/value axis does not shrink (:meth:`copies_groups`), and on the one ``heads``
        axis otherwise (:meth:`_by_kv_head`)."""
        if spec.head_groups is not None:
            return self._by_kv_head(spec, stored_shape, source_shape, target_shape)
        if self.shrink != "units" or "heads" not in spec.axes:
            return None
        axis = spec.axes.index("heads")  # (a heads-only change at the same width, 12 of 32 → 6 of 64, is exact)
        if spec.axes[axis + 1 : axis + 2] != ("head_dim",) or not all(spec.resizable[axis : axis + 2]):
            return None
        heads, size = stored_shape[axis : axis + 2]
        if (heads, size) != tuple(source_shape[axis : axis + 2]):  # stored as coarser bands: keep them apart
            return None
        count, grown = target_shape[axis : axis + 2]
        if not (count < heads and grown > size and grown % size == 0 and count * grown <= heads * size):
            return None  # a target head must be whole source heads, and no more of them than there are
        flat = count * grown
        merged = replace(spec, axes=spec.axes[:axis] + ("heads*head_dim",) + spec.axes[axis + 2 :],
                         resizable=spec.resizable[:axis] + (True,) + spec.resizable[axis + 2 :],
                         inputs=spec.inputs[:axis + 1] + spec.inputs[axis + 2 :], head_size=size)
        join = lambda shape, n: tuple(shape[:axis]) + (n,) + tuple(shape[axis + 2 :])
        return merged, join(stored_shape, heads * size), join(source_shape, heads * size), join(target_shape, flat)

    def _by_kv_head(self, spec, stored_shape, source_shape, target_shape):
        """:meth:`regroup` of a grouped ``heads`` axis stored as (key/value heads × query heads per
        key/value head): those two axes where the grouping is kept and the key/value heads do not get
        fewer, so that every query head is copied with its group (4 heads in 2 groups → 6 in 3: groups
        0, 1, 1, heads 0, 1, 2, 3, 2, 3, as the key/value heads 0, 1, 1); the one ``heads`` axis,
        ``linear``, otherwise (a grouping that changes has no such copy). ``None`` where the stored
        heads are not split (stored bands)."""
        if len(stored_shape) != len(spec.axes) + 1 or "heads" not in spec.axes:
            return None
        axis = spec.axes.index("heads")
        source_groups, target_groups = stored_shape[axis + 1], spec.head_groups
        joined = tuple(stored_shape[:axis]) + (stored_shape[axis] * source_groups,) + tuple(stored_shape[axis + 2 :])
        grouped, shapes = split_heads_axis(spec, axis, (joined, source_groups), (source_shape, source_groups),
                                           (target_shape, target_groups))
        if source_groups != target_groups or not self.copies_groups(grouped, axis, shapes[0][axis], shapes[2][axis]):
            return spec, joined, tuple(source_shape), tuple(target_shape)
        return (grouped, *shapes)

    def constant_response(self, spec, stored_shape, source_shape, target_shape):
        if self.non_dyadic != "split":
            return None
        merged = self.regroup(spec, stored_shape, source_shape, target_shape)
        if merged is not None:
            response = self.constant_response(*merged)
            if response is None or len(merged[0].axes) == len(spec.axes):
                return response
            first = 1 if spec.axes[:1] == ("layers",) else 0
            axis = spec.axes.index("heads") - first
            shape = list(response.shape)
            if len(merged[0].axes) > len(spec.axes):  # (key/value heads, heads per key/value head) → heads
                shape[axis : axis + 2] = merged[3][axis + first : axis + first + 2]
                return response.expand(shape).reshape(shape[:axis] + [-1] + shape[axis + 2 :])
            if shape[axis] == 1:
                return response.unsqueeze(axis + 1)
            return response.reshape(shape[:axis] + [target_shape[axis + (spec.axes[:1] == ("layers",))],
                                                    -1] + shape[axis + 1 :])
        first = 1 if spec.axes[:1] == ("layers",) else 0
        response = None
        for axis in range(first, len(spec.axes)):
            if not (spec.resizable[axis] and self.shares(spec, axis)) or stored_shape[axis] == target_shape[axis]:
                continue
            if self.scheme(spec, axis, stored_shape[axis], target_shape[axis]) != "split":
                continue
            operator = self.axis_operator(spec, axis, stored_shape[axis], source_shape[axis], target_shape[axis])
            ones = torch.ones(stored_shape[axis], dtype=torch.float64)
            along = operator.apply(ones, 0).reshape([-1 if a == axis else 1 for a in range(first, len(spec.axes))])
            response = along if response is None else response * along
        return response

    def axis_operator(self, spec, axis, stored_length, source_length, target_length):
        if stored_length == target_length:
            return None
        scheme = self.scheme(spec, axis, stored_length, target_length)
        linear_heads = self._linear_heads(spec, axis, stored_length, target_length)
        if self.shrink == "units" and target_length < stored_length and not linear_heads:
            # whole units: the residual units with the largest norm gains, whole heads of a merged
            # heads*head_dim axis, evenly spaced units elsewhere (where weight selection takes them:
            # every k-th from the first at a whole ratio); along an input axis a kept unit carries
            # m/n of its weight, as split's whole units do
            share = target_length / stored_length if self.shares(spec, axis) else 1.0
            if spec.axes[axis] == "hidden" and spec.hidden_ranking is not None:
                kept = torch.tensor(sorted(spec.hidden_ranking[:target_length]))
            elif spec.axes[axis] == "heads*head_dim":
                size = spec.head_size
                heads = selected_indices(stored_length // size, target_length // size)
                kept = (heads[:, None] * size + torch.arange(size)).ravel()
            else:
                kept = selected_indices(stored_length, target_length)
            return Gather(kept, stored_length, share)
        return resize_operator(self.wavelet, stored_length, target_length, scheme, self.shares(spec, axis))
