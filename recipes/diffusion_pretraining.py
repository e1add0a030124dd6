"""Class-conditional diffusion pre-training of a DiT (dense or FINE-factorized), with accelerate.

    # a FINE DiT from scratch on Fashion-MNIST (Debian dataset-fashion-mnist, offline)
    python recipes/diffusion_pretraining.py --dataset_name fashion-mnist --model_type fine --layers 6 \\
        --max_train_steps 20000 --output_dir out/fine-l6
    # a deeper FINE DiT from that run's learngene: σ alone for 300 steps, then everything
    accelerate launch recipes/diffusion_pretraining.py --dataset_name fashion-mnist --learngene out/fine-l6/learngene \\
        --layers 10 --sigma_only_steps 300 --max_train_steps 5000 --output_dir out/fine-l10
    # any imagefolder (one sub-folder per class) or Hub image dataset
    python recipes/diffusion_pretraining.py --dataset_name path/to/folder --model_type dit --output_dir out/dit

The model predicts the noise added by a DDPM schedule (1000 steps, linear betas) under an MSE
loss; each sample's class label is replaced by the null class ``--class_dropout_prob`` of the
time (0.1, as in DiT), in every block at once, so sampling can use classifier-free guidance.
diffusers' DiT (and the FINE DiT) give each block its own label embedding, each dropping the
label on its own draw in training; that would leave the null class unseen as a whole and half the
samples with a label some blocks do not see, so the recipe turns those draws off and drops labels
itself. An EMA of the weights is kept and used for samples and the saved
model. Every ``--sample_every`` steps and at the end (never with 0) it logs the held-out
denoising loss and writes a grid of DDIM samples (one row per class) to ``OUTPUT_DIR/samples/``. Checkpoints and
``--resume_from_checkpoint latest`` work as in the other recipes. Under several processes
``--per_device_train_batch_size`` is per process: each rank draws its own part of every global
batch, with its own noise, and ``--max_train_steps`` counts global optimizer steps. At the end: ``OUTPUT_DIR/model``
(the EMA model, diffusers format), for a FINE model also ``OUTPUT_DIR/dense`` (plain
``DiTTransformer2DModel``) and ``OUTPUT_DIR/learngene`` (its FINE learngene).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DiTTransformer2DModel
from diffusers.models.embeddings import LabelEmbedding
from diffusers.training_utils import EMAModel
from safetensors.torch import load_file
from torch.nn import functional as F
from transformers.utils.logging import tqdm

sys.path.insert(0, str(Path(__file__).parent))
from image_data import (  # noqa: E402
    FASHION_MNIST,
    FASHION_MNIST_CLASSES,
    imagefolder_columns,
    load_fashion_mnist,
    load_image_dataset,
)
from training_loop import (  # noqa: E402
    EXTRA_FILE,
    EpochOrder,
    MetricsLog,
    add_run_arguments,
    build_once,
    check_run_arguments,
    check_same_geometry,
    full_state_dict,
    resume_point,
    save_checkpoint,
    start_run,
    step_seed,
    write_text_atomically,
)

from hf_learngene.cli_types import (  # noqa: E402
    dataset,
    folder_or_hub_repo,
    integer,
    name,
    number,
    positive_integer,
    positive_number,
    requires,
    state_ranges,
)
from hf_learngene.modeling.fine_dit import FREEZE_CHOICES, FINEDiTTransformer2DModel  # noqa: E402
from hf_learngene.modeling.fine_learngene import SIGMA_INITS, FINELearngene  # noqa: E402
from hf_learngene.pipelines import ClassConditionalImagePipeline  # noqa: E402
from hf_learngene.saving import write_folder_atomically  # noqa: E402

COLUMN_OPTIONS = ("--image_column_name", "--label_column_name")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = parser.add_argument_group("data")
    data.add_argument("--dataset_name", default="fashion-mnist", type=dataset(["fashion-mnist"], "imagefolder"),
                      help="'fashion-mnist' (Debian package), an imagefolder path, or a Hub dataset name")
    data.add_argument("--image_size", type=positive_integer, default=28, help="images are resized to this side")
    data.add_argument("--channels", type=int, choices=(1, 3), default=1,
                      help="images are converted to this many channels")
    data.add_argument("--image_column_name", type=name, default="image",
                      help="the image column (an imagefolder's is 'image', or as its metadata file names it)")
    data.add_argument("--label_column_name", type=name, default="label",
                      help="the label column (an imagefolder's is 'label': its class folders, or a column of its "
                           "metadata file)")
    data.add_argument("--max_train_samples", type=positive_integer, help="use only this many (default: all)")
    data.add_argument("--max_eval_samples", type=positive_integer, default=512,
                      help="held-out images scored for denoising loss")
    model = parser.add_argument_group("model")
    model.add_argument("--model_type", choices=("fine", "dit"), default="fine", help="the model trained from scratch")
    start = model.add_mutually_exclusive_group()
    start.add_argument("--learngene", type=folder_or_hub_repo("config.json", "FINE learngene folder"),
                       help="a FINE learngene: build the model from it (depth --layers)")
    start.add_argument("--model_name_or_path", type=folder_or_hub_repo("config.json", "DiT folder"),
                       help="a saved DiT (dense or FINE) whose weights start the training")
    model.add_argument("--sigma_init", choices=SIGMA_INITS, default="interpolate",
                       help="with --learngene: how the σ of new depths start")
    model.add_argument("--sigma_only_steps", type=integer(0, zero="off"), default=0,
                       help="with a FINE model: train σ alone (factors frozen) this long first")
    model.add_argument("--sigma_only_train", choices=FREEZE_CHOICES, default="sigma",
                       help="what the σ-only stage trains: σ alone (the paper), or also biases, norms and embeddings")
    model.add_argument("--layers", type=positive_integer, default=6)
    model.add_argument("--heads", type=positive_integer, default=4)
    model.add_argument("--head_dim", type=positive_integer, default=32)
    model.add_argument("--patch_size", type=positive_integer, default=4, help="a divisor of --image_size")
    model.add_argument("--rank", type=positive_integer,
                       help="a new FINE model: rank-1 units per matrix type (default: the hidden size)")
    train = parser.add_argument_group("training")
    add_run_arguments(train, checkpointing_steps=1000, checkpoint_zero="only at the end and at --stop_after_steps")
    train.add_argument("--max_train_steps", type=positive_integer, default=20000)
    train.add_argument("--per_device_train_batch_size", type=positive_integer, default=64)
    train.add_argument("--learning_rate", type=positive_number, default=1e-4)
    train.add_argument("--ema_decay", type=number(0, 1, high_open=True), default=0.9999)
    train.add_argument("--sample_every", type=integer(0, zero="never"), default=1000,
                       help="log the held-out loss and write a sample grid every N steps and at the end")
    train.add_argument("--sampling_steps", type=integer(1, 1000), default=50, help="DDIM steps per sample grid")
    train.add_argument("--guidance_scale", type=number(1, note="1 means no guidance"), default=1.0,
                       help="classifier-free guidance of the samples")
    train.add_argument("--class_dropout_prob", type=number(0, 1, high_open=True), default=0.1,
                       help="share of samples trained with the null class in every block (what guidance uses)")
    state_ranges(parser)
    args = parser.parse_args(argv)
    if args.image_size % args.patch_size:
        parser.error(f"--image_size {args.image_size} is not a multiple of --patch_size {args.patch_size}")
    check_dataset(parser, args)
    check_model_options(parser, args)
    check_run_arguments(parser, args)
    return args


def check_dataset(parser: argparse.ArgumentParser, args) -> None:
    """Fashion-MNIST's fixed shape, and the columns an imagefolder has, before any work."""
    if args.dataset_name == "fashion-mnist":
        if not (FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
            parser.error(f"--dataset_name fashion-mnist: not in {FASHION_MNIST}; apt-get install dataset-fashion-mnist")
        if args.channels != 1 or args.image_size != 28:
            parser.error("--dataset_name fashion-mnist is 28×28 grey: use --channels 1 --image_size 28")
        requires(parser, args, COLUMN_OPTIONS, False, "for an imagefolder or Hub dataset, not fashion-mnist")
        return
    columns = imagefolder_columns(args.dataset_name) if Path(args.dataset_name).is_dir() else None
    if columns is None:  # a Hub dataset, or a metadata file not read here: loading the data checks its columns
        return
    for option in COLUMN_OPTIONS:
        column = getattr(args, option[2:])
        if column not in columns:
            parser.error(f"{option} {column}: the imagefolder {args.dataset_name} has the columns "
                         f"{', '.join(columns)}")


def check_model_options(parser: argparse.ArgumentParser, args) -> None:
    """Options that describe one kind of start (a new model, a learngene, a FINE model) need that start."""
    if args.learngene and args.model_type == "dit":
        parser.error("--model_type dit with --learngene: a FINE learngene builds a FINE model")
    requires(parser, args, ["--sigma_only_steps"], is_fine(args),
             "with a FINE model (--model_type fine, --learngene, or a FINE --model_name_or_path): it trains FINE's "
             "σ alone")
    requires(parser, args, ["--sigma_only_train"], args.sigma_only_steps > 0, "with --sigma_only_steps above 0")
    requires(parser, args, ["--sigma_init"], bool(args.learngene), "with --learngene")
    new_fine = args.model_type == "fine" and not (args.learngene or args.model_name_or_path)
    requires(parser, args, ["--rank"], new_fine,
             "for a new FINE model (--model_type fine, without --learngene or --model_name_or_path)")


def is_fine(args) -> bool:
    """Whether the model trained is FINE (a saved model on the Hub is taken to be; loading it tells)."""
    if args.learngene:
        return True
    if args.model_name_or_path:
        config = Path(args.model_name_or_path) / "config.json"
        if not config.is_file():
            return True
        return json.loads(config.read_text()).get("_class_name") == FINEDiTTransformer2DModel.__name__
    return args.model_type == "fine"


def load_data(args):
    """(train images, train labels, held-out images, held-out labels, class names)."""
    if args.dataset_name == "fashion-mnist":  # parse_args checked its 28×28 grey shape
        (images, labels), (test_images, test_labels) = load_fashion_mnist("train"), load_fashion_mnist("test")
        names = list(FASHION_MNIST_CLASSES)
    else:
        images, labels, names, converted = load_image_dataset(args.dataset_name, "train", args.image_size,
                                                              args.channels, args.image_column_name,
                                                              args.label_column_name)
        if converted:
            print(f"converted {converted} images to {args.channels} channel(s)", flush=True)
        try:
            test_images, test_labels, _, _ = load_image_dataset(args.dataset_name, "test", args.image_size,
                                                                args.channels, args.image_column_name,
                                                                args.label_column_name)
        except SystemExit:  # no test split: hold out the end of the training split
            images, test_images = images[: -args.max_eval_samples], images[-args.max_eval_samples:]
            labels, test_labels = labels[: -args.max_eval_samples], labels[-args.max_eval_samples:]
    if args.max_train_samples:
        images, labels = images[: args.max_train_samples], labels[: args.max_train_samples]
    return images, labels, test_images[: args.max_eval_samples], test_labels[: args.max_eval_samples], names


def build_model(args, num_classes: int):
    config = dict(num_attention_heads=args.heads, attention_head_dim=args.head_dim, in_channels=args.channels,
                  num_layers=args.layers, sample_size=args.image_size, patch_size=args.patch_size,
                  num_embeds_ada_norm=num_classes)
    if args.model_name_or_path:
        model = load_dit(args.model_name_or_path)
        mismatched = {k: (model.config[k], v) for k, v in config.items() if model.config.get(k) != v}
        if mismatched:
            raise SystemExit(f"{args.model_name_or_path} does not match the requested model: {mismatched} "
                             "(saved, asked)")
        return model.train()
    if args.learngene:  # the size names every field, so a learngene of other images or widths is refused
        return FINEDiTTransformer2DModel.from_learngene(args.learngene, config, sigma_init=args.sigma_init,
                                                        seed=args.seed)
    if args.model_type == "fine":
        return FINEDiTTransformer2DModel(**config, norm_num_groups=1, rank=args.rank)
    return DiTTransformer2DModel(**config, norm_num_groups=1)


def drop_labels_per_sample(model) -> None:
    """Turn off the label dropout of each block's own label embedding (a saved config brings it
    back, so this runs on every model the recipe builds or loads): the training loop drops a
    sample's label once, for all blocks together."""
    for module in model.modules():
        if isinstance(module, LabelEmbedding):
            module.dropout_prob = 0.0


def load_dit(folder) -> DiTTransformer2DModel | FINEDiTTransformer2DModel:
    """A saved DiT, dense or FINE, as its config names it."""
    saved = DiTTransformer2DModel.load_config(folder)
    cls = FINEDiTTransformer2DModel if saved.get("_class_name") == "FINEDiTTransformer2DModel" else DiTTransformer2DModel
    return cls.from_pretrained(folder)


@torch.no_grad()
def denoising_loss(model, images, labels, scheduler, seed: int = 0, batch: int = 256) -> float:
    """Held-out noise-prediction MSE with noise and timesteps fixed by ``seed`` (comparable across runs)."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(images.shape, generator=generator)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(images),), generator=generator)
    was_training = model.training
    model.eval()
    total = 0.0
    device = next(model.parameters()).device
    for start in range(0, len(images), batch):
        part = slice(start, start + batch)
        noisy = scheduler.add_noise(images[part], noise[part], timesteps[part])
        predicted = model(noisy.to(device), timestep=timesteps[part].to(device),
                          class_labels=labels[part].to(device)).sample[:, : images.shape[1]]
        total += F.mse_loss(predicted.float(), noise[part].to(device), reduction="sum").item()
    model.train(was_training)
    return total / noise.numel()


def sample_grid(model, num_classes: int, path: Path, args, per_class: int = 4) -> None:
    """``per_class`` DDIM samples of every class as one PNG (a row per class)."""
    from PIL import Image

    pipeline = ClassConditionalImagePipeline(transformer=model, scheduler=DDIMScheduler(num_train_timesteps=1000))
    pipeline.set_progress_bar_config(disable=True)
    labels = [c for c in range(num_classes) for _ in range(per_class)]
    images = pipeline(labels, num_inference_steps=args.sampling_steps, guidance_scale=args.guidance_scale,
                      generator=torch.Generator().manual_seed(args.seed), output_type="np").images
    size = images.shape[1]
    grid = images.reshape(num_classes, per_class, size, size, -1).transpose(0, 2, 1, 3, 4)
    grid = (grid.reshape(num_classes * size, per_class * size, -1) * 255).round().astype("uint8")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid.squeeze(-1) if grid.shape[-1] == 1 else grid).save(path)


def main(argv=None) -> dict:
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    # FINE's σ-only stage leaves the factors without gradients: DDP must expect unused parameters
    accelerator = start_run(args, find_unused_parameters=args.sigma_only_steps > 0)
    images, labels, heldout_images, heldout_labels, names = load_data(args)
    num_classes = len(names)
    model = build_once(accelerator, output_dir, lambda: build_model(args, num_classes), load_dit)
    drop_labels_per_sample(model)
    model_class = type(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=0.0)
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    model, optimizer = accelerator.prepare(model, optimizer)
    ema = EMAModel(model.parameters(), decay=args.ema_decay)  # after prepare: sharded like the model under FSDP
    ranks, rank = accelerator.num_processes, accelerator.process_index
    batch_size = args.per_device_train_batch_size
    if len(images) < batch_size * ranks:
        raise SystemExit(f"{len(images)} training images cannot fill one global batch of {batch_size} × {ranks} "
                         "processes: lower --per_device_train_batch_size or use more images")
    geometry = {"processes": ranks, "batch_size": batch_size, "steps": args.max_train_steps}
    state = {"step": 0, "heldout": [], "geometry": geometry}
    checkpoint = resume_point(args, output_dir)
    if checkpoint is not None:
        state = json.loads((checkpoint / "recipe_state.json").read_text())
        check_same_geometry(state.get("geometry"), geometry, checkpoint)
        accelerator.load_state(str(checkpoint))
        load_ema(ema, checkpoint / EXTRA_FILE)
    log = MetricsLog(accelerator, args, resumed_at_step=state["step"] if checkpoint is not None else None)
    fine = issubclass(model_class, FINEDiTTransformer2DModel)
    per_epoch = max(1, len(images) // (batch_size * ranks))  # global batches of batch_size × processes
    progress = tqdm(total=args.max_train_steps, initial=state["step"], desc="diffusion training",
                    disable=args.no_progress_bar or not accelerator.is_local_main_process)
    steps_this_run = 0
    model.train()
    while state["step"] < args.max_train_steps:
        step = state["step"]
        if fine:
            accelerator.unwrap_model(model).freeze_learngenes(step < args.sigma_only_steps, train=args.sigma_only_train)
        epoch, offset = divmod(step, per_epoch)
        index = rank_batch(list(EpochOrder(len(images), args.seed, epoch)), offset, batch_size, ranks, rank)
        seed = step_seed(args.seed, step, rank)  # the same noise on resume, other noise on other ranks
        generator = torch.Generator().manual_seed(seed)
        batch, batch_labels = images[index], labels[index]
        noise = torch.randn(batch.shape, generator=generator)
        timesteps = torch.randint(0, 1000, (len(batch),), generator=generator)
        noisy = scheduler.add_noise(batch, noise, timesteps)
        dropped = torch.rand(len(batch), generator=generator) < args.class_dropout_prob
        batch_labels = torch.where(dropped, num_classes, batch_labels)  # the null class, in every block
        with accelerator.autocast():
            predicted = model(noisy.to(accelerator.device), timestep=timesteps.to(accelerator.device),
                              class_labels=batch_labels.to(accelerator.device)).sample[:, : batch.shape[1]]
            loss = F.mse_loss(predicted.float(), noise.to(accelerator.device))
        accelerator.backward(loss)
        accelerator.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], 1.0)
        optimizer.step()
        optimizer.zero_grad()
        ema.step(model.parameters())
        state["step"] += 1
        steps_this_run += 1
        loss_value = accelerator.reduce(loss.detach(), reduction="mean").item()
        progress.update(1)
        progress.set_postfix(loss=f"{loss_value:.4f}")
        log.log({"train/loss": loss_value}, state["step"])
        last = state["step"] == args.max_train_steps
        if args.sample_every and (state["step"] % args.sample_every == 0 or last):  # 0: never
            evaluate_and_sample(accelerator, model, model_class, ema, heldout_images, heldout_labels, scheduler,
                                num_classes, output_dir, args, state, log)
        stop = args.stop_after_steps and steps_this_run >= args.stop_after_steps
        if stop or last or (args.checkpointing_steps and state["step"] % args.checkpointing_steps == 0):
            save_checkpoint(accelerator, output_dir, state, extra=lambda: ema_tensors(ema))
        if stop and not last:
            progress.close()
            accelerator.print(f"stopped after {steps_this_run} steps; resume with --resume_from_checkpoint latest")
            accelerator.end_training()  # tears the process group down: a live gloo group aborts at exit
            return {"stopped_at_step": state["step"]}
    progress.close()
    final = save_final(accelerator, model, model_class, ema, output_dir)
    report = {"steps": state["step"], "heldout_denoising_loss": state["heldout"], "saved": final,
              "classes": names, "processes": ranks, "command": " ".join(sys.argv)}
    if accelerator.is_main_process:
        write_text_atomically(output_dir / "results.json", json.dumps(report, indent=2) + "\n")
    accelerator.end_training()
    return report


def rank_batch(order: list[int], offset: int, batch_size: int, ranks: int, rank: int) -> torch.Tensor:
    """This rank's part of global batch ``offset`` of an epoch's order: ranks take consecutive slices,
    so together they draw what one process with ``batch_size × ranks`` would."""
    first = (offset * ranks + rank) * batch_size
    return torch.tensor(order[first : first + batch_size])


def full_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor of an FSDP2 shard (a collective: every rank calls it), or the tensor itself."""
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


def ema_tensors(ema: EMAModel) -> dict[str, torch.Tensor]:
    """The EMA's whole weights (gathered from every rank under FSDP), for a checkpoint."""
    tensors = {f"ema.{i}": full_tensor(p.detach()).cpu() for i, p in enumerate(ema.shadow_params)}
    return tensors | {"ema.optimization_step": torch.tensor(ema.optimization_step)}


@torch.no_grad()
def load_ema(ema: EMAModel, path: Path) -> None:
    """Put a checkpoint's EMA back, each rank keeping its own shard under FSDP."""
    saved = load_file(path)
    for i, shadow in enumerate(ema.shadow_params):
        whole = saved[f"ema.{i}"]
        if hasattr(shadow, "device_mesh"):  # a DTensor shard: take this rank's part of the whole
            from torch.distributed.tensor import distribute_tensor

            whole = distribute_tensor(whole.to(shadow.dtype), shadow.device_mesh, shadow.placements)
        shadow.copy_(whole)
    ema.optimization_step = int(saved["ema.optimization_step"].item())  # the EMA's decay warms up with it


def ema_copy(accelerator, model, model_class, ema):
    """On the main process, a plain (unsharded) model carrying the EMA weights; ``None`` on the others.

    Every rank must call it: under FSDP the weights are gathered from all of them.
    """
    shadow = [full_tensor(p.detach()) for p in ema.shadow_params]
    state = full_state_dict(accelerator, model)
    if not accelerator.is_main_process:
        return None
    unwrapped = accelerator.unwrap_model(model)
    copied = model_class.from_config(unwrapped.config)
    copied.load_state_dict({k: v.float() for k, v in state.items()})
    with torch.no_grad():  # the EMA follows model.parameters(), which a fresh copy lists in the same order
        for parameter, value in zip(copied.parameters(), shadow, strict=True):
            parameter.copy_(value)
    return copied.to(accelerator.device).eval()


def evaluate_and_sample(accelerator, model, model_class, ema, images, labels, scheduler, num_classes, output_dir,
                        args, state, log):
    averaged = ema_copy(accelerator, model, model_class, ema)
    if averaged is not None:
        loss = denoising_loss(averaged, images, labels, scheduler, seed=args.seed)
        state["heldout"].append({"step": state["step"], "loss": loss})
        log.log({"eval/denoising_loss": loss}, state["step"])
        accelerator.print(f"step {state['step']}: held-out denoising loss {loss:.4f}")
        sample_grid(averaged, num_classes, output_dir / "samples" / f"step-{state['step']}.png", args)
    accelerator.wait_for_everyone()


def save_final(accelerator, model, model_class, ema, output_dir: Path) -> list[str]:
    averaged = ema_copy(accelerator, model, model_class, ema)
    saved = []
    if averaged is not None:
        outputs = {"model": averaged}
        if isinstance(averaged, FINEDiTTransformer2DModel):
            outputs.update(dense=averaged.to_dense(), learngene=FINELearngene.extract(averaged))
        for name, module in outputs.items():
            write_folder_atomically(output_dir / name, module.save_pretrained)  # never a half-written model
            saved.append(name)
    accelerator.wait_for_everyone()
    return saved


if __name__ == "__main__":
    main()
