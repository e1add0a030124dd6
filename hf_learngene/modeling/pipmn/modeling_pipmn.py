"""PIPMN: the Paired Inverse Pyramid MLP Network (Chen, Zhu, Yan et al., 2022) for audio classification.

The frame features ``(batch, frames, features)`` are average-pooled along time to a few tokens,
then pass an encoder of Dense MLP blocks that widen the channels (100→400→800) and a paired
decoder that narrows them back (800→400→100). Each decoder block's output is added to the encoder
output of the same width (U-Net-style paired skips); the last one receives the pooled input,
scaled per channel by a learnable factor that starts at 1e-6. A Dense MLP block first mixes along
the tokens with three branches — an MLP (LayerNorm, tokens→2·tokens→tokens, GELU), a depthwise
convolution along time and the identity — fused by a linear over the concatenated branches into a
layer-scaled residual, then projects the channels (LayerNorm → Linear → GELU, layer-scaled).
The head averages the tokens, normalises and classifies.

Deviations from the authors' public code, on purpose:

* their model holds a 720,000-parameter projection that no forward pass uses; it is left out, so
  every parameter here is used (739,650 at 10 classes with the default sizes, as the paper counts);
* their forward applies softmax and their loss applies it again; here the model returns logits
  and the loss is plain cross-entropy on them (with the paper's label smoothing).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput

from .configuration_pipmn import PIPMNConfig


class PIPMNDenseMLPBlock(nn.Module):
    """Token mixing (MLP, depthwise conv and identity branches) then a channel projection."""

    def __init__(self, config: PIPMNConfig, in_channels: int, out_channels: int):
        super().__init__()
        tokens, eps = config.num_tokens, config.layer_norm_eps
        self.token_norm = nn.LayerNorm(tokens, eps=eps)
        self.token_fc1 = nn.Linear(tokens, tokens * config.token_mlp_ratio)
        self.token_fc2 = nn.Linear(tokens * config.token_mlp_ratio, tokens)
        self.token_conv = nn.Conv1d(in_channels, in_channels, config.token_conv_kernel,
                                    padding=config.token_conv_kernel // 2, groups=in_channels)
        self.token_fuse = nn.Linear(3 * tokens, tokens)
        self.token_scale = nn.Parameter(torch.full((in_channels,), config.layer_scale_init))
        self.channel_norm = nn.LayerNorm(in_channels, eps=eps)
        self.channel_proj = nn.Linear(in_channels, out_channels)
        self.channel_scale = nn.Parameter(torch.full((out_channels,), config.layer_scale_init))
        self.activation = nn.GELU()

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # (batch, channels, tokens)
        mlp = self.token_fc2(self.activation(self.token_fc1(self.token_norm(hidden))))
        branches = torch.cat([mlp, self.token_conv(hidden), hidden], dim=-1)
        hidden = hidden + self.token_scale[:, None] * self.token_fuse(branches)
        projected = self.activation(self.channel_proj(self.channel_norm(hidden.transpose(1, 2))))
        return (projected * self.channel_scale).transpose(1, 2)


class PIPMNPreTrainedModel(PreTrainedModel):
    config_class = PIPMNConfig
    base_model_prefix = "pipmn"
    main_input_name = "input_features"
    _no_split_modules = ["PIPMNDenseMLPBlock"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Truncated-normal linear and conv weights (std ``initializer_range``), zero biases."""
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv1d)):
            nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()
        elif isinstance(module, PIPMNDenseMLPBlock):
            module.token_scale.fill_(self.config.layer_scale_init)
            module.channel_scale.fill_(self.config.layer_scale_init)
        elif isinstance(module, PIPMNModel):
            module.input_skip_scale.fill_(self.config.input_skip_init)


class PIPMNModel(PIPMNPreTrainedModel):
    """The PIPMN backbone: pooled tokens through the paired inverse pyramid; returns the final
    ``(batch, features, tokens)`` map and its token average as ``pooler_output``."""

    def __init__(self, config: PIPMNConfig):
        super().__init__(config)
        widths = config.pyramid
        self.pool = nn.AdaptiveAvgPool1d(config.num_tokens)
        self.blocks = nn.ModuleList(PIPMNDenseMLPBlock(config, a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.input_skip_scale = nn.Parameter(torch.full((config.num_features,), config.input_skip_init))
        self.post_init()

    def forward(self, input_features: torch.Tensor, return_dict: bool | None = None, **kwargs):
        if input_features.dim() != 3 or input_features.shape[-1] != self.config.num_features:
            raise ValueError(
                f"input_features must be (batch, frames, {self.config.num_features}), got {tuple(input_features.shape)}; "
                "make them with PIPMNFeatureExtractor"
            )
        pooled_input = self.pool(input_features.transpose(1, 2))  # (batch, features, tokens)
        hidden, encoder_outputs = pooled_input, []
        depth = len(self.config.encoder_channels)
        for index, block in enumerate(self.blocks):
            hidden = block(hidden)
            if index < depth - 1:
                encoder_outputs.append(hidden)  # paired with the decoder block of the same width
            elif depth <= index < len(self.blocks) - 1:
                hidden = hidden + encoder_outputs.pop()
        hidden = hidden + self.input_skip_scale[:, None] * pooled_input
        pooled = hidden.mean(dim=-1)
        if return_dict is False:
            return hidden, pooled
        return BaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=pooled)


class PIPMNForAudioClassification(PIPMNPreTrainedModel):
    """PIPMN with its classifier (token average → LayerNorm → dropout → Linear); returns logits."""

    def __init__(self, config: PIPMNConfig):
        super().__init__(config)
        self.pipmn = PIPMNModel(config)
        self.norm = nn.LayerNorm(config.num_features, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.num_features, config.num_labels)
        self.post_init()

    def forward(self, input_features: torch.Tensor, labels: torch.Tensor | None = None,
                return_dict: bool | None = None, **kwargs) -> SequenceClassifierOutput:
        pooled = self.pipmn(input_features).pooler_output
        logits = self.classifier(self.dropout(self.norm(pooled)))
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits, labels.to(logits.device),
                                               label_smoothing=self.config.label_smoothing)
        if return_dict is False:
            return (loss, logits) if loss is not None else (logits,)
        return SequenceClassifierOutput(loss=loss, logits=logits)
