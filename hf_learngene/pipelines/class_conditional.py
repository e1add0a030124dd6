"""Class-conditional sampling in pixel space from a DiT (dense or FINE), with classifier-free guidance.

DiT's own ``DiTPipeline`` decodes latents with a VAE; small image sets (Fashion-MNIST) are
modelled in pixel space, where this pipeline samples directly. Any diffusers scheduler works;
DDIM is the usual choice for few steps.
"""

from __future__ import annotations

import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput
from diffusers.utils.torch_utils import randn_tensor


class ClassConditionalImagePipeline(DiffusionPipeline):
    """``transformer`` (a DiT taking ``class_labels``) + ``scheduler`` → images of the given classes."""

    model_cpu_offload_seq = "transformer"

    def __init__(self, transformer, scheduler):
        super().__init__()
        self.register_modules(transformer=transformer, scheduler=scheduler)

    @torch.no_grad()
    def __call__(self, class_labels: list[int], num_inference_steps: int = 50, guidance_scale: float = 1.0,
                 generator: torch.Generator | None = None, output_type: str = "pil", return_dict: bool = True):
        config = self.transformer.config
        classes = config.num_embeds_ada_norm
        if any(not 0 <= int(label) < classes for label in class_labels):
            raise ValueError(f"class labels must lie in [0, {classes}), got {list(class_labels)}")
        size, channels = config.sample_size, config.in_channels
        images = randn_tensor((len(class_labels), channels, size, size), generator=generator,
                              device=self._execution_device, dtype=self.transformer.dtype)
        labels = torch.tensor(class_labels, device=self._execution_device).reshape(-1)
        null = torch.full_like(labels, classes)  # the label-dropout ("no class") embedding
        self.scheduler.set_timesteps(num_inference_steps)
        for t in self.progress_bar(self.scheduler.timesteps):
            model_input = self.scheduler.scale_model_input(images, t)
            timesteps = torch.full((len(labels),), int(t), device=images.device, dtype=torch.long)
            if guidance_scale > 1:
                both = self.transformer(torch.cat([model_input, model_input]), timestep=timesteps.repeat(2),
                                        class_labels=torch.cat([labels, null])).sample
                conditional, unconditional = both.chunk(2)
                noise = unconditional + guidance_scale * (conditional - unconditional)
            else:
                noise = self.transformer(model_input, timestep=timesteps, class_labels=labels).sample
            noise = noise[:, :channels]  # a model that also predicts variance returns twice the channels
            images = self.scheduler.step(noise, t, images, generator=generator).prev_sample
        images = (images / 2 + 0.5).clamp(0, 1)
        if output_type == "pt":
            result = images
        else:
            result = images.cpu().permute(0, 2, 3, 1).float().numpy()
            if output_type == "pil":
                result = self.numpy_to_pil(result)
        return ImagePipelineOutput(images=result) if return_dict else (result,)
