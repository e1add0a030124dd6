"""FINE's learngene: the shared factors U⋆, V⋆ of every matrix type, the pretrained σ of every
block, and the model's ordinary weights — everything needed to build a FINE DiT of any depth.

``FINELearngene.extract(model)`` takes a trained :class:`FINEDiTTransformer2DModel`;
``FINEDiTTransformer2DModel.from_learngene(learngene, {"layers": L}, sigma_init=...)`` builds one
of depth ``L``. How the new blocks' σ are initialised is FINE's ablation:

* ``"interpolate"`` (default): block ``j`` of ``L`` takes the source σ at relative depth
  ``j/(L-1)``, linearly interpolated between the two nearest source blocks;
* ``"linear"``: a straight line from the first source block's σ to the last one's;
* ``"identical"``: every block gets the mean σ over the source blocks;
* ``"random"``: σ drawn around the source's mean magnitude (the paper's weakest choice).

Per-block ordinary weights (biases, the block's timestep/label embeddings) come from the nearest
source block. Width changes are not supported: FINE's factors fix the hidden size, and the
error says so.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config

from ..architectures import architecture_for, resolve_target_config
from ..architectures.sizing import SizeRequest
from ..errors import LearngeneConfigError, UnsupportedArchitectureError
from ..saving import push_folder
from .diffusers_io import AtomicSaveMixin
from .factorized import SharedFactors

SIGMA_INITS = ("interpolate", "linear", "identical", "random")


class FINELearngene(AtomicSaveMixin, ModelMixin, ConfigMixin):
    """Shared factors + per-block σ + ordinary weights of a FINE DiT, saved like a diffusers model
    (``config.json`` + safetensors) and pushed to the Hub with a model card."""

    @register_to_config
    def __init__(self, dit_config: dict | None = None, factor_shapes: dict | None = None,
                 sigma_names: list[str] | None = None, block_names: list[str] | None = None,
                 global_names: dict | None = None, source_layers: int = 1):
        super().__init__()
        self.factors = torch.nn.ModuleDict({kind: SharedFactors(*shape) for kind, shape in (factor_shapes or {}).items()})
        # per-block tensors are stacked over the source blocks: (source_layers, ...)
        self.sigmas = torch.nn.ParameterDict({_key(n): torch.nn.Parameter(torch.zeros(source_layers, shape))
                                              for n, shape in (sigma_names or [])})
        self.blocks = torch.nn.ParameterDict({_key(n): torch.nn.Parameter(torch.zeros(source_layers, *shape))
                                              for n, shape in (block_names or [])})
        self.globals = torch.nn.ParameterDict({_key(n): torch.nn.Parameter(torch.zeros(*shape))
                                               for n, shape in (global_names or {}).items()})

    @classmethod
    @torch.no_grad()
    def extract(cls, model) -> "FINELearngene":
        from .fine_dit import FINEDiTTransformer2DModel

        if not isinstance(model, FINEDiTTransformer2DModel):
            raise UnsupportedArchitectureError(
                f"a FINE learngene comes from a FINEDiTTransformer2DModel, not {type(model).__name__}; for other "
                "models extract a FRONT or BoT learngene with Learngene.extract")
        state = model.state_dict()
        layers = model.config.num_layers
        per_block = {}
        for name, tensor in state.items():
            if name.startswith("transformer_blocks.0."):
                per_block[name[len("transformer_blocks.0."):]] = tuple(tensor.shape)
        sigma_names = [(n, s[0]) for n, s in per_block.items() if n.endswith(".sigma")]
        block_names = [(n, s) for n, s in per_block.items() if not n.endswith(".sigma")]
        global_names = {n: tuple(t.shape) for n, t in state.items()
                        if not n.startswith(("transformer_blocks.", "factors."))}
        config = {k: v for k, v in model.config.items() if not k.startswith("_")}
        learngene = cls(dit_config=config,
                        factor_shapes={k: (f.U.shape[0], f.V.shape[0], f.rank) for k, f in model.factors.items()},
                        sigma_names=sigma_names, block_names=block_names, global_names=global_names,
                        source_layers=layers)
        for kind, factors in model.factors.items():
            learngene.factors[kind].load_state_dict(factors.state_dict())
        for name, _ in sigma_names + block_names:
            target = learngene.sigmas if name.endswith(".sigma") else learngene.blocks
            target[_key(name)].copy_(torch.stack([state[f"transformer_blocks.{i}.{name}"] for i in range(layers)]))
        for name in global_names:
            learngene.globals[_key(name)].copy_(state[name])
        return learngene.eval()

    def summary(self) -> dict:
        """Source size, rank per matrix type and how many values the learngene stores."""
        dit = self.config.dit_config
        stored = sum(p.numel() for p in self.parameters())
        factors = sum(p.numel() for p in self.factors.parameters())
        return {
            "source_layers": self.config.source_layers,
            "hidden": dit["num_attention_heads"] * dit["attention_head_dim"],
            "heads": dit["num_attention_heads"],
            "patch_size": dit["patch_size"],
            "sample_size": dit["sample_size"],
            "in_channels": dit["in_channels"],
            "classes": dit["num_embeds_ada_norm"],
            "ranks": {kind: factors.rank for kind, factors in self.factors.items()},
            "stored_values": stored,
            "factor_values": factors,
            "stored_bytes": stored * 4,
        }

    def push_to_hub(self, repo_id: str, *, commit_message: str | None = None, private: bool | None = None,
                    token: str | bool | None = None, revision: str | None = None, create_pr: bool = False,
                    tags: list[str] | None = None, **kwargs):
        """Upload the learngene with a model card (library, tags, sizes, ranks, usage) in one commit."""
        from ..model_cards import fine_learngene_card

        def write(folder, full_repo_id):
            self.save_pretrained(folder)
            fine_learngene_card(self, full_repo_id, tags).save(folder / "README.md")

        return push_folder(repo_id, write, what="FINE learngene", commit_message=commit_message or "Upload FINE learngene",
                           private=private, token=token, revision=revision, create_pr=create_pr)

    def target_config(self, size: SizeRequest = None, **config_overrides: Any) -> dict[str, Any]:
        """The config of the FINE DiT built for ``size``, resolved as every learngene's is (the DiT
        table's axis names and presets); a size that changes what the factors fix is refused."""
        if isinstance(size, Mapping):  # a saved DiT's config: its "_" fields are diffusers' bookkeeping
            size = {key: value for key, value in size.items() if not key.startswith("_")}
        source = {**self.config.dit_config, "_class_name": "DiTTransformer2DModel"}
        target = resolve_target_config(architecture_for("DiTTransformer2DModel"), source, size, **config_overrides)
        self.check_compatible(target)
        return {key: value for key, value in target.items() if not key.startswith("_")}

    def check_compatible(self, dit_config: Mapping[str, Any]) -> None:
        """A clear error when a target differs from the learngene in what FINE's factors fix."""
        for field in ("num_attention_heads", "attention_head_dim", "patch_size", "in_channels", "sample_size",
                      "num_embeds_ada_norm"):
            mine, theirs = self.config.dit_config.get(field), dit_config.get(field)
            if theirs is not None and mine != theirs:
                raise LearngeneConfigError(
                    f"this FINE learngene has {field}={mine}, the target asks for {theirs}; a FINE learngene fixes "
                    "the width, heads, patch size, channels, image size and classes — only the depth (num_layers) "
                    "changes")

    @torch.no_grad()
    def sigma_for_depth(self, name: str, num_layers: int, how: str, generator: torch.Generator | None = None):
        """(num_layers, r) σ for a target of ``num_layers`` blocks (see the module docstring)."""
        source = self.sigmas[_key(name)].detach()
        count = source.shape[0]
        if how == "interpolate":
            return interpolate_depth(source, num_layers)
        if how == "linear":
            weights = torch.linspace(0, 1, num_layers, dtype=source.dtype)[:, None]
            return source[0] * (1 - weights) + source[-1] * weights
        if how == "identical":
            return source.mean(0, keepdim=True).expand(num_layers, -1).clone()
        if how == "random":
            scale = source.abs().mean()
            return torch.randn(num_layers, source.shape[1], generator=generator, dtype=source.dtype) * scale
        raise LearngeneConfigError(
            f"unknown sigma_init '{how}'; choose one of {', '.join(SIGMA_INITS)} (source has {count} blocks)")

    def nearest_block(self, name: str, index: int, num_layers: int) -> torch.Tensor:
        source = self.blocks[_key(name)].detach()
        position = 0 if num_layers == 1 else round(index * (source.shape[0] - 1) / (num_layers - 1))
        return source[position]


def interpolate_depth(stack: torch.Tensor, num_layers: int) -> torch.Tensor:
    """Linear interpolation of a (blocks, ...) stack to ``num_layers`` blocks at equal relative depths."""
    count = stack.shape[0]
    if num_layers == 1 or count == 1:
        return stack[:1].expand(num_layers, *stack.shape[1:]).clone() if count == 1 else stack.mean(0, keepdim=True)
    position = torch.linspace(0, count - 1, num_layers, dtype=torch.float64)
    low = position.floor().long().clamp(max=count - 2)
    frac = (position - low).to(stack.dtype).view(-1, *([1] * (stack.dim() - 1)))
    return stack[low] * (1 - frac) + stack[low + 1] * frac


def _key(name: str) -> str:
    return name.replace(".", "__")  # ParameterDict keys cannot hold dots
