"""The interface every resizing method implements.

A method sees one stacked role tensor at a time as a signal on named axes (the layer axis
included) and knows nothing of architectures. ``encode`` turns a source signal into what the
learngene stores; ``decode`` turns that into a signal of any target shape. Both act only on
the axes marked resizable; every other axis passes through untouched.

Convention shared by all methods: resizing is a resampling — a constant signal keeps its
value whatever the target size. How the amplitude of the result is then set is the separate
rescaling policy (:mod:`hf_learngene.methods.rescaling`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Sequence

import torch
from transformers.utils import logging

from ..errors import LearngeneConfigError

logger = logging.get_logger(__name__)


@dataclass(frozen=True)
class SignalSpec:
    """What a method may know of one stacked role: its axes and which of them it may resize.

    * ``axes``: the axis names (``layers``, ``hidden``, ``heads``, ``head_dim``, ``vocab``, ...).
    * ``resizable``: per axis, whether it follows the target size (otherwise carried unchanged).
    * ``inputs``: per axis, whether it belongs to the weight's input (fan-in) dimension.
    * ``writes_residual``: the role projects into the residual stream (attention output, MLP
      output), so zeroing it makes its block an identity.
    * ``role``: the role's name in the learngene (e.g. ``layers.{layer}.self_attn.q_proj.weight``),
      so that a method can tell roles of the same shape apart (HyperCloning's noise).
    * ``tied_output``: the role is an input embedding that the output head shares (tied word
      embeddings), so its hidden axis is also the head's fan-in.
    * ``head_groups``: ``None`` when the ``heads`` and ``head_dim`` axes may be treated as one flat
      axis of elements (BERT, GPT-2, ViT). A number ``g`` when heads are whole units (rotary
      halves, grouped-query attention, as in Llama): a ``heads`` axis then holds consecutive
      groups of ``g`` query heads, each group sharing one key/value head.
    * ``scaled_by``: the axis whose square root the model multiplies this role's output by (Gemma
      multiplies its word embeddings by √hidden), from the architecture table. A function-preserving
      build divides the role by the growth of that factor (:func:`scale_growth`): HyperCloning in its
      construction, FRONT and BoT through the ``preserve_function`` rescaling, which reads the same
      table field as the role's fan-in.
    * ``attention_logits``: ``True`` for the queries and keys of a scaled dot-product attention
      over flat heads (the model divides their dot product by √head_dim), ``False`` for its values
      and output projection, ``None`` where the architecture does not say. When the head size
      grows ``k``-fold, the resampled dot product is ``k`` times longer and the model's scale
      ``1/√k`` times smaller, so a function-preserving build multiplies queries and keys by
      ``k^(-1/4)`` each (:func:`logit_growth`) and the logits keep their value.
    * ``attention_keys``: the role is the keys of such an attention. A method that copies head
      dimensions unevenly (BoT's ``split`` at a head-size ratio that is not a power of two) shares
      each key dimension among its copies, as along an input axis, so that the dot product grows by
      exactly the ratio and the ``k^(-1/4)`` factors keep the logits.
    * ``hidden_ranking``: the stored hidden units from the largest norm gain to the smallest
      (:meth:`~hf_learngene.Learngene.hidden_ranking`), given to a method whose
      :attr:`Resizer.ranks_hidden_units` asks for it; ``None`` otherwise, or where the model has no
      norm over its hidden axis.
    * ``head_size``: set on a spec whose ``heads`` and ``head_dim`` axes a method merged into one
      flat ``heads*head_dim`` axis: the stored head size, so that the method can keep whole heads.
    """

    axes: tuple[str, ...]
    resizable: tuple[bool, ...]
    inputs: tuple[bool, ...]
    writes_residual: bool = False
    role: str = ""
    tied_output: bool = False
    head_groups: int | None = None
    scaled_by: str | None = None
    attention_logits: bool | None = None
    attention_keys: bool = False
    hidden_ranking: tuple[int, ...] | None = None
    head_size: int | None = None


def scale_growth(spec: SignalSpec, source_shape: Sequence[int], target_shape: Sequence[int]) -> float:
    """How much the factor the model multiplies this role by grows from the source's shape to the
    target's: √(target / source) of the ``scaled_by`` axis, 1 for a role the model does not scale."""
    if spec.scaled_by is None or spec.scaled_by not in spec.axes:
        return 1.0
    axis = spec.axes.index(spec.scaled_by)
    return math.sqrt(target_shape[axis] / source_shape[axis])


def logit_growth(spec: SignalSpec, source_shape: Sequence[int], target_shape: Sequence[int]) -> float:
    """What a function-preserving build divides a query or key role by when the head size changes:
    ``(target / source)^(1/4)`` of the ``head_dim`` axis; 1 for every other role."""
    if not spec.attention_logits or "head_dim" not in spec.axes:
        return 1.0
    axis = spec.axes.index("head_dim")
    return (target_shape[axis] / source_shape[axis]) ** 0.25


class Resizer(ABC):
    """One learngene method: a linear operator per resizable axis, applied axis by axis.

    Subclasses set ``name`` and implement :meth:`axis_operator`; a method that stores something
    other than the source signal (FRONT's DCT coefficients, BoT's coarser bands) also overrides
    :meth:`encode` and :meth:`stored_shape`.
    """

    name: ClassVar[str]
    default_rescaling: ClassVar[str] = "auto"
    provides_weights: ClassVar[bool] = True  # False for the random-init baseline
    ranks_hidden_units: bool = False  # True: decoding passes SignalSpec.hidden_ranking
    stores_blocks: ClassVar[bool] = True  # False where the stored layer axis is not the source's blocks (FRONT's DCT)
    narrowing_policy: str = "source_std"  # what the ``auto`` rescaling stands for where a tensor does not widen

    def options(self) -> dict[str, Any]:
        """The method's options as JSON-serialisable values, saved in the learngene's config."""
        return {}

    def stored_shape(self, spec: SignalSpec, source_shape: Sequence[int]) -> tuple[int, ...]:
        """The shape :meth:`encode` produces for a signal of ``source_shape``."""
        return tuple(source_shape)

    def encode(self, signal: torch.Tensor, spec: SignalSpec, *, overwrite: bool = False) -> torch.Tensor:
        """Source signal → stored learngene tensor (by default the signal itself). With
        ``overwrite=True`` the method may compute in ``signal``'s memory (the caller gives it up):
        extraction holds one copy of a role, not two."""
        return signal

    @abstractmethod
    def axis_operator(
        self, spec: SignalSpec, axis: int, stored_length: int, source_length: int, target_length: int
    ) -> "torch.Tensor | AxisOperator | None":
        """The (target × stored) operator that resizes one axis — a dense matrix, or an
        :class:`AxisOperator` for long axes (FFT, sparse) — or ``None`` to leave it as it is."""

    def check(self, spec: SignalSpec, source_shape: Sequence[int], target_shape: Sequence[int]) -> None:
        """Refuse, with a clear message, a resize this method cannot do."""

    def variance_gain(
        self, spec: SignalSpec, stored_shape: Sequence[int], source_shape: Sequence[int], target_shape: Sequence[int]
    ) -> float:
        """The factor by which the resize scales the variance of uncorrelated unit-variance stored
        values: the product, over every axis that changes, of the mean squared row of its operator
        (1 for a selection, 1/2 for a Haar mean of pairs). The ``kept_variance`` rescaling divides it out."""
        regrouped = self.regroup(spec, stored_shape, source_shape, target_shape)
        if regrouped is not None:
            return self.variance_gain(*regrouped)
        gain = 1.0
        for axis in range(len(spec.axes)):
            if spec.resizable[axis]:
                operator = self.axis_operator(spec, axis, stored_shape[axis], source_shape[axis], target_shape[axis])
                if operator is not None:
                    gain *= mean_square_row(operator, stored_shape[axis])
        return gain

    def constant_response(
        self, spec: SignalSpec, stored_shape: Sequence[int], source_shape: Sequence[int], target_shape: Sequence[int]
    ) -> torch.Tensor | None:
        """What a source signal of ones decodes to, over the axes of one decoded layer, where it is
        not ones (broadcastable: length 1 on the axes that keep constants); ``None`` when every
        axis keeps a constant, as resampling does. A function-preserving build adds the role's mean
        back through it, so that an operator that does not keep constants (BoT's ``split`` shares
        along input axes) decodes the mean as it decodes the weights."""
        return None

    def regroup(
        self, spec: SignalSpec, stored_shape: Sequence[int], source_shape: Sequence[int], target_shape: Sequence[int]
    ) -> tuple[SignalSpec, tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None:
        """Axes this method resizes as one for this build (BoT's whole heads side by side): ``(spec,
        stored, source, target)`` shapes with them merged, or ``None`` (the default) to resize every
        axis on its own. Decoding merges, resizes and splits back, axis by axis as ever."""
        return None

    def decode(
        self, stored: torch.Tensor, spec: SignalSpec, source_shape: Sequence[int], target_shape: Sequence[int]
    ) -> torch.Tensor:
        """Stored learngene tensor → signal of ``target_shape``."""
        regrouped = self.regroup(spec, stored.shape, source_shape, target_shape)
        if regrouped is not None:
            merged, merged_stored, merged_source, merged_target = regrouped
            return self.decode(stored.reshape(merged_stored), merged, merged_source, merged_target).reshape(
                tuple(target_shape))
        self._check_decode(spec, source_shape, target_shape)
        return resize_blockwise(stored, self._operators(spec, stored.shape, source_shape, target_shape))

    def _operators(self, spec: SignalSpec, stored_shape, source_shape, target_shape, first: int = 0) -> dict:
        """The operator of every resizable axis from ``first`` on that changes, keyed by axis - ``first``."""
        operators = {}
        for axis in range(first, len(spec.axes)):
            if spec.resizable[axis]:
                operator = self.axis_operator(spec, axis, stored_shape[axis], source_shape[axis], target_shape[axis])
                if operator is not None:
                    operators[axis - first] = operator
        return operators

    def decode_layers(
        self,
        stored: torch.Tensor,
        spec: SignalSpec,
        source_shape: Sequence[int],
        target_shape: Sequence[int],
        reuse_buffers: bool = False,
    ) -> Iterator[torch.Tensor]:
        """:meth:`decode`'s signal one slice of its first axis at a time (one target layer of a
        layered role), so that a billion-parameter build holds one layer of a role, never all.

        A method whose decode is axis by axis (FRONT, BoT) mixes the stored layers with the
        small matrix of the layer axis (a few target layers per pass over the stored role, and
        only the stored layers the matrix uses), then resizes each layer's other axes; a method
        that overrides :meth:`decode` is decoded whole and sliced. Roles without a layer axis are
        one slice (a leading axis of 1 is added, so every slice has the role's other axes).

        ``reuse_buffers=True`` computes every layer in the same buffers: each yielded tensor is
        then overwritten by the next one, so the caller must be done with it (copy it out) first.
        """
        regrouped = self.regroup(spec, stored.shape, source_shape, target_shape)
        if regrouped is not None:
            merged, merged_stored, merged_source, merged_target = regrouped
            layer_shape = tuple(target_shape[1:]) if spec.axes[:1] == ("layers",) else tuple(target_shape)
            for layer in self.decode_layers(stored.reshape(merged_stored), merged, merged_source, merged_target,
                                            reuse_buffers):
                yield layer.reshape(layer_shape)
            return
        if spec.axes[:1] != ("layers",) or type(self).decode is not Resizer.decode:
            whole = self.decode(stored, spec, source_shape, target_shape)
            yield from (whole if spec.axes[:1] == ("layers",) else whole[None]).unbind(0)
            return
        self._check_decode(spec, source_shape, target_shape)
        within = self._operators(spec, stored.shape, source_shape, target_shape, first=1)
        workspace = Workspace() if reuse_buffers else None
        operator = self.axis_operator(spec, 0, stored.shape[0], source_shape[0], target_shape[0])
        if operator is None:
            for layer in range(target_shape[0]):
                yield resize_blockwise(stored[layer], within, workspace=workspace)
            return
        # (target layers × stored layers), from the operator applied to unit signals
        mixing = operator_matrix(operator, stored.shape[0], dtype=stored.dtype).to(stored.device)
        used = int(mixing.ne(0).any(0).nonzero().max()) + 1 if mixing.any() else 1  # FRONT drops high frequencies
        sources = stored[:used].reshape(used, -1)
        group = max(1, min(len(mixing), MIX_BYTES // max(1, sources[0].numel() * sources.element_size())))
        for start in range(0, len(mixing), group):
            rows = mixing[start : start + group, :used]
            mixed = None
            if workspace is not None:
                mixed = workspace.buffer("mixed", (len(rows), sources.shape[1]), sources.dtype, sources.device)
            mixed = torch.matmul(rows, sources, out=mixed)
            for one in mixed.view(len(rows), *stored.shape[1:]).unbind(0):
                yield resize_blockwise(one, within, workspace=workspace)

    def _check_decode(self, spec: SignalSpec, source_shape: Sequence[int], target_shape: Sequence[int]) -> None:
        check_fixed_axes(source_shape, target_shape, spec.resizable)
        self.check(spec, source_shape, target_shape)
        if spec.tied_output:
            warn_if_tied_output_grows(spec, source_shape, target_shape)


class AxisOperator(ABC):
    """A linear resize of one axis that is applied without its dense matrix (FRONT's FFT, BoT's
    sparse wavelet matrix): at LLM widths the dense (out × in) matrix costs gigabytes and an
    O(n²) product per fibre. :func:`apply_along` accepts one wherever it accepts a matrix."""

    in_length: int
    out_length: int

    @abstractmethod
    def apply(self, x: torch.Tensor, axis: int, out: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` with axis ``axis`` (length ``in_length``) resized to ``out_length``, computed in
        ``x``'s dtype and on its device. ``out`` is a buffer of the result's shape that the
        operator may compute in and return (a reused one costs no fresh pages); an operator that
        cannot write there ignores it."""


BLOCK_BYTES = 8 * 2**20  # the input of one piece of a blockwise resize; its FFT temporaries are a few times it
WHOLE_BYTES = 256 * 2**20  # a tensor up to this size is resized whole: each operator once, over contiguous data
MIX_BYTES = 64 * 2**20  # the stored layers mixed into target layers per pass over a stored role


class Workspace:
    """Buffers reused from one resize to the next, one per step of a resize.

    Decoding a role layer by layer repeats the same shapes; taking fresh memory for each layer
    costs the kernel's zero-filling of every page (more than the FFTs themselves on a CPU).
    Whatever a workspace buffer holds is overwritten by the next call that uses it.
    """

    def __init__(self) -> None:
        self._buffers: dict[Any, torch.Tensor] = {}

    def buffer(self, key: Any, shape: Sequence[int], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        numel = math.prod(shape)
        held = self._buffers.get(key)
        if held is None or held.numel() < numel or held.dtype != dtype or held.device != device:
            held = self._buffers[key] = torch.empty(numel, dtype=dtype, device=device)
        return held[:numel].view(tuple(shape))


def operator_length(operator: "torch.Tensor | AxisOperator") -> int:
    """The output length of an axis operator."""
    return operator.out_length if isinstance(operator, AxisOperator) else operator.shape[0]


def operator_order(operators: dict[int, "torch.Tensor | AxisOperator"], shape: Sequence[int]) -> list[int]:
    """The axes in the order that moves the least data: the ones that shrink first, and the ones
    that grow from the outermost in, so that the strided (outer-axis) transforms run on the
    smaller tensors and the last, contiguous axis grows last."""
    return sorted(operators, key=lambda axis: (operator_length(operators[axis]) > shape[axis], axis))


def resize_blockwise(
    x: torch.Tensor,
    operators: dict[int, "torch.Tensor | AxisOperator"],
    overwrite: bool = False,
    workspace: "Workspace | None" = None,
) -> torch.Tensor:
    """``x`` with ``operators[axis]`` applied along each of those axes.

    A tensor of up to :data:`WHOLE_BYTES` is resized whole, in :func:`operator_order`. A larger
    one is resized piece by piece, so that the memory held is ``x``, the result and one piece's
    temporaries, whatever the size of ``x``: every axis but the first a block of first-axis
    slices at a time (they do not mix along it), then the first axis a block of columns at a
    time. ``overwrite=True`` lets it write into ``x`` (which is then consumed), so that a resize
    that keeps the lengths of the later axes and does not grow the first needs no second buffer;
    it always takes the piecewise path. With a ``workspace`` a whole resize offers its buffers to
    the operators (FRONT's inverse DCT on the CPU computes in them; the others ignore them), so
    the result may be one of them, overwritten by the next resize that uses the workspace. The
    values are those of applying the operators one after the other to all of ``x`` (the order
    of the axes may differ: equal up to rounding).
    """
    if not operators:
        return x
    if not overwrite and x.numel() * x.element_size() <= WHOLE_BYTES:
        for step, axis in enumerate(operator_order(operators, x.shape)):
            shape = (*x.shape[:axis], operator_length(operators[axis]), *x.shape[axis + 1 :])
            out = workspace.buffer(step, shape, x.dtype, x.device) if workspace is not None else None
            x = apply_along(x, axis, operators[axis], out)
        return x
    target_shape = [operator_length(operators[a]) if a in operators else n for a, n in enumerate(x.shape)]
    later = sorted(a for a in operators if a > 0)
    middle = x
    if later:
        keeps_lengths = all(target_shape[a] == x.shape[a] for a in later)
        middle = x if overwrite and keeps_lengths else x.new_empty((x.shape[0], *target_shape[1:]))
        step = max(1, BLOCK_BYTES // max(1, x[0].numel() * x.element_size()))
        for start in range(0, x.shape[0], step):
            piece = x[start : start + step]
            for axis in operator_order({a: operators[a] for a in later}, x.shape):
                piece = apply_along(piece, axis, operators[axis])
            middle[start : start + step] = piece
    if 0 not in operators:
        return middle
    rows = target_shape[0]
    flat = middle.reshape(middle.shape[0], -1)
    # in place when the first axis does not grow and the buffer is ours (made here, or given up)
    ours = middle is not x or overwrite
    out = flat if ours and rows <= flat.shape[0] else flat.new_empty((rows, flat.shape[1]))
    step = max(1, BLOCK_BYTES // max(1, flat.shape[0] * flat.element_size()))
    for start in range(0, flat.shape[1], step):
        out[:rows, start : start + step] = apply_along(flat[:, start : start + step], 0, operators[0])
    return out[:rows].reshape(target_shape)


def apply_along(
    x: torch.Tensor, axis: int, matrix: torch.Tensor | AxisOperator, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Multiply every 1-D fibre of ``x`` along ``axis`` by ``matrix`` (out_len × in_len), dense or
    an :class:`AxisOperator` (which may compute in ``out``, see :meth:`AxisOperator.apply`)."""
    if isinstance(matrix, AxisOperator):
        return matrix.apply(x, axis, out)
    moved = x.movedim(axis, -1)
    return (moved @ matrix.T.to(device=moved.device, dtype=moved.dtype)).movedim(-1, axis)


class Gather(AxisOperator):
    """An axis operator that picks ``indices`` (each output position copies one input position),
    times ``scale``: the peers' selections, tilings and layer copies, with no dense 0/1 matrix."""

    def __init__(self, indices: torch.Tensor, in_length: int, scale: float = 1.0):
        self.indices = indices.long()
        self.in_length = in_length
        self.out_length = len(indices)
        self.scale = scale

    def apply(self, x: torch.Tensor, axis: int, out: torch.Tensor | None = None) -> torch.Tensor:
        picked = x.index_select(axis, self.indices.to(x.device))
        return picked.mul_(self.scale) if self.scale != 1.0 else picked


def mean_square_row(op: torch.Tensor | AxisOperator, in_length: int) -> float:
    """The mean over output positions of an axis operator's squared row norm, ``‖A‖²_F / out``:
    read off a selection or a (sparse) matrix, and for any other operator (FRONT's FFT) summed over
    its response to unit signals, a block of them at a time (never the whole dense matrix)."""
    if isinstance(op, Gather):
        return op.scale**2
    matrix = getattr(op, "matrix", op)  # BoT's sparse operators keep their (target × source) matrix
    if isinstance(matrix, torch.Tensor):
        values = matrix.coalesce().values() if matrix.is_sparse else matrix
        return values.double().square().sum().item() / matrix.shape[0]
    total = 0.0
    for start in range(0, in_length, 512):
        units = torch.eye(in_length, dtype=torch.float64)[start : start + 512]
        total += op.apply(units, 1).square().sum().item()
    return total / op.out_length


def operator_matrix(
    op: torch.Tensor | AxisOperator, in_length: int, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """The dense (out × in) matrix of ``op``, for short axes (the layer axis) that need it
    written out: an operator is applied to the identity, whose columns are the unit signals."""
    if isinstance(op, AxisOperator):
        if op.in_length != in_length:
            raise ValueError(f"the operator takes axes of length {op.in_length}, not {in_length}")
        return op.apply(torch.eye(in_length, dtype=dtype), 0)
    if op.shape[1] != in_length:
        raise ValueError(f"the matrix takes axes of length {op.shape[1]}, not {in_length}")
    return op.to(dtype)


def check_fixed_axes(source_shape: Sequence[int], target_shape: Sequence[int], resizable: Sequence[bool]) -> None:
    for axis, (n, m, free) in enumerate(zip(source_shape, target_shape, resizable)):
        if not free and n != m:
            raise LearngeneConfigError(f"axis {axis} is carried over unchanged (size {n}) but the target asks for {m}")


def heads_by_kv_head(spec: SignalSpec, shape: Sequence[int]) -> tuple[int, ...]:
    """``shape`` with the ``heads`` axis of a grouped role split into (key/value heads, query heads
    per key/value head): how a method that must know the source's grouping stores it. Other
    shapes are returned as they are."""
    if spec.head_groups is None or "heads" not in spec.axes:
        return tuple(shape)
    axis = spec.axes.index("heads")
    return tuple(shape[:axis]) + (shape[axis] // spec.head_groups, spec.head_groups) + tuple(shape[axis + 1 :])


def stored_head_groups(stored: torch.Tensor, spec: SignalSpec) -> int | None:
    """The source's query heads per key/value head, when ``stored`` holds its ``heads`` axis split
    by :func:`heads_by_kv_head`; ``None`` otherwise."""
    if spec.head_groups is None or "heads" not in spec.axes or stored.dim() != len(spec.axes) + 1:
        return None
    return stored.shape[spec.axes.index("heads") + 1]


def warn_if_tied_output_grows(spec: SignalSpec, source_shape: Sequence[int], target_shape: Sequence[int]) -> None:
    """Say that a tied output head cannot keep the source's logits when the width grows.

    The grown model's hidden vector holds ``k`` copies (or a ``k``-times longer resampling) of the
    source's, and a tied head reads it with the input embedding's rows, so a function-preserving
    build gives logits ``k`` times the source's; ``√k`` times for an embedding the model scales by
    √hidden (Gemma), whose rows that build divides by √k. An untied head is scaled for its fan-in
    and keeps them.
    """
    if "hidden" not in spec.axes:
        return
    axis = spec.axes.index("hidden")
    ratio = target_shape[axis] / source_shape[axis]
    if ratio <= 1:
        return
    factor = ratio / scale_growth(spec, source_shape, target_shape)
    logger.warning(
        f"the input embedding {spec.role} is tied to the output head (tie_word_embeddings=True): at "
        f"{ratio:g}x the width, a function-preserving build (hypercloning, or front/bot with rescaling 'auto' or "
        f"'preserve_function') gives logits {factor:g}x the source's at a whole ratio (the same ranking; a softmax at "
        f"temperature 1/{factor:g}), and at other ratios logits that weigh the copied units twice (not the same "
        "ranking). For the source's logits, build with tie_word_embeddings=False: the model then gets its "
        "own head, built from the word embeddings and scaled for its fan-in."
    )
