"""FINE's diffusion transformer: diffusers' DiT with its block linears factorized.

Every block of a ``DiTTransformer2DModel`` keeps its structure; the linears of each matrix type
listed in ``FACTORIZED_TYPES`` become :class:`~hf_learngene.modeling.factorized.FactorizedLinear`
layers over one ``SharedFactors`` pair per type, held by the model (``factors.<type>.U/V``).
Each block keeps its own σ vectors and biases; patch embedding, per-block timestep/label
embeddings, norms and the output layer stay ordinary. ``to_dense()`` returns the plain
``DiTTransformer2DModel`` computing the same function, which diffusers loads without hf_learngene.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import torch
from diffusers import DiTTransformer2DModel, ModelMixin  # noqa: F401 - DiffusionPipeline looks ModelMixin up here
from diffusers.configuration_utils import register_to_config

from ..architectures.sizing import SizeRequest
from ..errors import LearngeneConfigError
from .diffusers_io import AtomicSaveMixin
from .factorized import FactorizedLinear, SharedFactors, matching_sigma

if TYPE_CHECKING:
    from .fine_learngene import FINELearngene

# what freeze_learngenes(train=...) leaves trainable: σ alone, or everything but U⋆, V⋆
FREEZE_CHOICES = ("sigma", "sigma_and_unshared")

# matrix type → the linears of one block that share its factors (their rows stacked in this order)
FACTORIZED_TYPES: dict[str, tuple[str, ...]] = {
    "attn_qkv": ("attn1.to_q", "attn1.to_k", "attn1.to_v"),
    "attn_out": ("attn1.to_out.0",),
    "mlp_in": ("ff.net.0.proj",),
    "mlp_out": ("ff.net.2",),
    "ada_ln": ("norm1.linear",),
}


class FINEDiTTransformer2DModel(AtomicSaveMixin, DiTTransformer2DModel):
    """A DiT whose attention q/k/v, attention output, MLP in/out and adaLN modulation are factorized.

    Takes every argument of ``DiTTransformer2DModel`` plus ``rank``: the number of rank-1 units per
    matrix type (capped at each type's smaller dimension; default: the hidden size, i.e. no
    rank limit for the square types). FINE's paper does not publish its rank.

    Where the σ layout differs from the paper: FINE has one shared pair (U⋆, V⋆) per matrix type
    and one diagonal Σ⁽ˡ⁾ per type and block. Here q, k and v share the one "attention qkv" pair
    (their rows of U⋆), as in the paper, but each of them has its own σ vector, so a block holds
    three diagonals for that type instead of one (with equal σ's it is the paper's layer). Every
    other type has one σ per block, as in the paper. σ-only training therefore trains ``2·rank``
    more values per block than the paper's.
    """

    @register_to_config
    def __init__(
        self,
        num_attention_heads: int = 16,
        attention_head_dim: int = 72,
        in_channels: int = 4,
        out_channels: int | None = None,
        num_layers: int = 28,
        dropout: float = 0.0,
        norm_num_groups: int = 32,
        attention_bias: bool = True,
        sample_size: int = 32,
        patch_size: int = 2,
        activation_fn: str = "gelu-approximate",
        num_embeds_ada_norm: int | None = 1000,
        upcast_attention: bool = False,
        norm_type: str = "ada_norm_zero",
        norm_elementwise_affine: bool = False,
        norm_eps: float = 1e-5,
        rank: int | None = None,
    ):
        super().__init__(
            num_attention_heads=num_attention_heads, attention_head_dim=attention_head_dim, in_channels=in_channels,
            out_channels=out_channels, num_layers=num_layers, dropout=dropout, norm_num_groups=norm_num_groups,
            attention_bias=attention_bias, sample_size=sample_size, patch_size=patch_size,
            activation_fn=activation_fn, num_embeds_ada_norm=num_embeds_ada_norm, upcast_attention=upcast_attention,
            norm_type=norm_type, norm_elementwise_affine=norm_elementwise_affine, norm_eps=norm_eps,
        )
        if num_layers < 1:
            raise LearngeneConfigError(f"num_layers must be at least 1, got {num_layers}")
        self.factors = torch.nn.ModuleDict()
        first = self.transformer_blocks[0]
        for kind, paths in FACTORIZED_TYPES.items():
            dense = [first.get_submodule(path) for path in paths]
            out_features, in_features = sum(d.out_features for d in dense), dense[0].in_features
            type_rank = min(rank or self.inner_dim, out_features, in_features)
            self.factors[kind] = SharedFactors(out_features, in_features, type_rank)
            for block in self.transformer_blocks:
                start = 0
                for path in paths:
                    linear = block.get_submodule(path)
                    layer = FactorizedLinear(self.factors[kind], (start, start + linear.out_features),
                                             bias=linear.bias is not None,
                                             sigma=matching_sigma(linear.weight, type_rank))
                    if linear.bias is not None:
                        with torch.no_grad():
                            layer.bias.copy_(linear.bias)
                    block.set_submodule(path, layer)
                    start += linear.out_features

    @classmethod
    @torch.no_grad()
    def from_learngene(
        cls,
        learngene: "FINELearngene | str | os.PathLike",
        size: SizeRequest = None,
        *,
        sigma_init: str = "interpolate",
        seed: int = 0,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
        **config_overrides: Any,
    ) -> "FINEDiTTransformer2DModel":
        """A FINE DiT of ``size`` from a :class:`FINELearngene` (object, folder or Hub id).

        ``size`` is what every ``from_learngene`` takes: a DiT preset, a dict of axis names
        (``{"layers": 10}``) or config fields (``{"num_layers": 10}``), a DiT config, or ``None``
        for the source's depth. FINE's factors fix the width, heads, patch size, channels, image
        size and classes, so only the depth may change; asking for more is refused.

        The shared factors are copied, each block's σ is initialised by ``sigma_init``
        (``"interpolate"``, ``"linear"``, ``"identical"`` or ``"random"``, drawn from ``seed``),
        per-block ordinary weights come from the nearest source block and the rest is copied.
        Train σ alone first with :meth:`freeze_learngenes`, as FINE does, then everything
        (``freeze_learngenes(False)``). ``revision``, ``cache_dir``, ``token`` and
        ``local_files_only`` apply to downloading a learngene from the Hub.
        """
        from .fine_learngene import SIGMA_INITS, FINELearngene

        if sigma_init not in SIGMA_INITS:
            raise LearngeneConfigError(f"unknown sigma_init '{sigma_init}'; choose one of {', '.join(SIGMA_INITS)}")
        if not isinstance(learngene, FINELearngene):
            learngene = FINELearngene.from_pretrained(learngene, revision=revision, cache_dir=cache_dir, token=token,
                                                      local_files_only=local_files_only)
        config = learngene.target_config(size, **config_overrides)
        num_layers = config["num_layers"]
        model = cls(**config)
        for kind, factors in learngene.factors.items():
            model.factors[kind].load_state_dict(factors.state_dict())
        generator = torch.Generator().manual_seed(seed)
        state = model.state_dict()
        for key in learngene.sigmas:
            name = key.replace("__", ".")
            sigmas = learngene.sigma_for_depth(name, num_layers, sigma_init, generator)
            for index in range(num_layers):
                state[f"transformer_blocks.{index}.{name}"].copy_(sigmas[index])
        for key in learngene.blocks:
            name = key.replace("__", ".")
            for index in range(num_layers):
                state[f"transformer_blocks.{index}.{name}"].copy_(learngene.nearest_block(name, index, num_layers))
        for key, tensor in learngene.globals.items():
            state[key.replace("__", ".")].copy_(tensor)
        return model.eval()  # as from_pretrained returns it; call .train() to train

    def factorized_layers(self):
        """``(block index, matrix type, path, layer)`` for every factorized linear."""
        for index, block in enumerate(self.transformer_blocks):
            for kind, paths in FACTORIZED_TYPES.items():
                for path in paths:
                    yield index, kind, path, block.get_submodule(path)

    def freeze_learngenes(self, frozen: bool = True, train: str = "sigma") -> None:
        """FINE's light retraining: with ``frozen=True`` only what ``train`` names is trained.

        * ``train="sigma"`` (default, the paper's σ-only stage): the per-block σ vectors alone;
          the shared factors U⋆, V⋆ and every ordinary weight (biases, norms, embeddings,
          adaLN's label/timestep embeddings, the output layer) are frozen.
        * ``train="sigma_and_unshared"``: everything but the shared factors U⋆, V⋆.

        ``frozen=False`` makes every parameter trainable again (full training).
        """
        if train not in FREEZE_CHOICES:
            raise LearngeneConfigError(
                f"freeze_learngenes(train={train!r}): choose one of {', '.join(map(repr, FREEZE_CHOICES))} "
                "(σ alone, or everything but the shared factors U⋆, V⋆)"
            )
        if not frozen:
            self.requires_grad_(True)
            return
        self.requires_grad_(train == "sigma_and_unshared")
        for factors in self.factors.values():
            factors.requires_grad_(False)
        for _, _, _, layer in self.factorized_layers():
            layer.sigma.requires_grad_(True)

    @torch.no_grad()
    def to_dense(self) -> DiTTransformer2DModel:
        """The plain diffusers DiT with every factorized weight multiplied out (same outputs)."""
        config = {k: v for k, v in self.config.items() if not k.startswith("_") and k != "rank"}
        dense = DiTTransformer2DModel(**config)
        state = {name: tensor for name, tensor in self.state_dict().items() if not name.startswith("factors.")}
        for index, _, path, layer in self.factorized_layers():
            prefix = f"transformer_blocks.{index}.{path}"
            state.pop(f"{prefix}.sigma")
            state[f"{prefix}.weight"] = layer.weight()
        dense.load_state_dict(state, strict=True)
        dense = dense.to(self.device) if self.dtype == torch.float32 else dense.to(self.device, self.dtype)
        return dense.train(self.training)
