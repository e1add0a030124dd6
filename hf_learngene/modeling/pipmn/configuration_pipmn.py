"""Configuration of PIPMN, the Paired Inverse Pyramid MLP Network for audio classification."""

from __future__ import annotations

from typing import Any, Sequence

from transformers import PretrainedConfig


class PIPMNConfig(PretrainedConfig):
    """The sizes and training constants of a :class:`PIPMNForAudioClassification`.

    Args:
        num_features: feature channels per frame (100: the five 20-coefficient cepstra, or 100 log-mel bins).
        num_tokens: the time axis is average-pooled to this many tokens (10 in the paper).
        encoder_channels: the widths of the encoder blocks (the paper's 400, 800); the decoder mirrors
            them back down to ``num_features``, so the pyramid is 100→400→800→400→100.
        token_mlp_ratio: the token-mixing MLP's hidden size as a multiple of ``num_tokens`` (10→20→10).
        token_conv_kernel: kernel of the depthwise convolution along the tokens.
        layer_scale_init: initial per-channel scale of the token-mixing residual and of the
            channel projection (the authors' 1e-6).
        input_skip_init: initial per-channel scale of the skip from the pooled input to the last
            decoder block (the authors' 1e-6).
        dropout: dropout before the classifier (0.5).
        label_smoothing: label smoothing of the training loss (0.1).
        initializer_range: std of the truncated-normal init of linear weights (0.02).
        layer_norm_eps: epsilon of every LayerNorm.
    """

    model_type = "pipmn"

    def __init__(
        self,
        num_features: int = 100,
        num_tokens: int = 10,
        encoder_channels: Sequence[int] = (400, 800),
        token_mlp_ratio: int = 2,
        token_conv_kernel: int = 3,
        layer_scale_init: float = 1e-6,
        input_skip_init: float = 1e-6,
        dropout: float = 0.5,
        label_smoothing: float = 0.1,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-6,
        **kwargs: Any,
    ):
        if num_tokens < 1 or num_features < 1:
            raise ValueError(f"num_tokens and num_features must be positive, got {num_tokens} and {num_features}")
        if not encoder_channels or any(int(c) < 1 for c in encoder_channels):
            raise ValueError(f"encoder_channels must be a non-empty list of positive widths, got {encoder_channels!r}")
        if token_conv_kernel % 2 == 0:
            raise ValueError(f"token_conv_kernel must be odd (it keeps the token count), got {token_conv_kernel}")
        self.num_features = num_features
        self.num_tokens = num_tokens
        self.encoder_channels = [int(c) for c in encoder_channels]
        self.token_mlp_ratio = token_mlp_ratio
        self.token_conv_kernel = token_conv_kernel
        self.layer_scale_init = layer_scale_init
        self.input_skip_init = input_skip_init
        self.dropout = dropout
        self.label_smoothing = label_smoothing
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        super().__init__(**kwargs)

    @property
    def pyramid(self) -> list[int]:
        """Every width along the network: input, encoder widths, then back down (100, 400, 800, 400, 100)."""
        return [self.num_features, *self.encoder_channels, *reversed(self.encoder_channels[:-1]), self.num_features]
