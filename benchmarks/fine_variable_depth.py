"""FINE at variable depth on Fashion-MNIST: one pre-trained factorized learngene, many depths.

1. Pre-trains a FINE DiT (``--source_layers`` blocks) and a dense DiT of the same size with the same
   budget (``recipes/diffusion_pretraining.py``).
2. For every target depth, trains with the same post-initialisation budget (``--steps``; FINE's
   σ-only steps count in it):
   * ``fine``: the FINE learngene at that depth (σ interpolated; ``--sigma_only_steps`` of σ alone);
   * ``random``: a dense DiT of that depth from random init;
   * ``svd``: the dense source's blocks (nearest in relative depth) as rank-``r`` truncated SVDs,
     the per-layer SVD ablation of FINE's paper;
   * ``front``: the core's FRONT resize of the dense source to that depth (DCT over the stacked
     blocks, all coefficients kept), through the ``DiTTransformer2DModel`` architecture table.
3. Scores each with FID on the Fashion-MNIST test set, using features of a small CNN this script
   trains on Fashion-MNIST itself (Inception weights cannot be downloaded here), and with the
   held-out denoising loss.

    python benchmarks/fine_variable_depth.py --device cuda           # the full run (GPU-sized)
    python benchmarks/fine_variable_depth.py --quick                 # minutes on a CPU

Outputs in ``--out`` (default ``benchmarks/results``): ``fine_variable_depth.json`` (with the command
line), ``fine_variable_depth.md`` and ``fine_variable_depth.png`` (a sample grid per depth and method).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from diffusers import DDIMScheduler, DiTTransformer2DModel
from torch import nn

sys.path.insert(0, str(Path(__file__).parents[1] / "recipes"))
import diffusion_pretraining  # noqa: E402
from image_data import load_fashion_mnist  # noqa: E402

from hf_learngene import Learngene  # noqa: E402
from hf_learngene.evaluation import frechet_distance  # noqa: E402
from hf_learngene.modeling.fine_dit import FACTORIZED_TYPES, FINEDiTTransformer2DModel  # noqa: E402
from hf_learngene.pipelines import ClassConditionalImagePipeline  # noqa: E402


@dataclass(frozen=True)
class Settings:
    source_layers: int = 12
    targets: tuple[int, ...] = (4, 6, 8)
    heads: int = 4
    head_dim: int = 32
    rank: int = 64
    source_steps: int = 20000
    steps: int = 2000
    sigma_only_steps: int = 300
    sigma_only_train: str = "sigma"  # or "sigma_and_unshared": also biases, norms and embeddings
    batch: int = 64
    lr: float = 1e-4
    samples_per_class: int = 100
    sampling_steps: int = 50
    feature_steps: int = 1500
    seed: int = 0


QUICK = Settings(source_layers=4, targets=(2, 3), heads=2, head_dim=16, rank=16, source_steps=300, steps=60,
                 sigma_only_steps=10, batch=32, lr=1e-3, samples_per_class=20, sampling_steps=10, feature_steps=300)


class FeatureNet(nn.Module):
    """A small CNN classifier of Fashion-MNIST; its 128-d penultimate layer gives FID's features."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                  nn.Linear(64 * 7 * 7, 128), nn.ReLU())
        self.head = nn.Linear(128, 10)

    def forward(self, images):
        return self.head(self.body(images))

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        self.eval()
        return torch.cat([self.body(images[i:i + 500]) for i in range(0, len(images), 500)])


def train_feature_net(settings: Settings, device: str) -> tuple[FeatureNet, float]:
    images, labels = load_fashion_mnist("train")
    test_images, test_labels = load_fashion_mnist("test")
    torch.manual_seed(settings.seed)
    net = FeatureNet().to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(settings.seed)
    for _ in range(settings.feature_steps):
        index = torch.randint(0, len(images), (128,), generator=generator)
        loss = nn.functional.cross_entropy(net(images[index].to(device)), labels[index].to(device))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    with torch.no_grad():
        net.eval()
        accuracy = (net(test_images[:2000].to(device)).argmax(-1).cpu() == test_labels[:2000]).float().mean().item()
    return net, accuracy


def recipe_arguments(settings: Settings) -> list[str]:
    """What every training run shares (the recipe places the model on the GPU itself, through accelerate)."""
    return ["--heads", str(settings.heads), "--head_dim", str(settings.head_dim),
            "--per_device_train_batch_size", str(settings.batch), "--learning_rate", str(settings.lr),
            "--seed", str(settings.seed), "--sampling_steps", "2", "--report_to", "none",
            "--checkpointing_steps", "1000000", "--no_progress_bar"]


def source_arguments(settings: Settings, kind: str, work: Path) -> list[str]:
    """The recipe's arguments for the source model of ``kind`` (fine or dit); --rank sets a new FINE
    model's factors, so the dense DiT takes none (the recipe refuses it there)."""
    rank = ["--rank", str(settings.rank)] if kind == "fine" else []
    return recipe_arguments(settings) + ["--model_type", kind, "--layers", str(settings.source_layers), *rank,
                                         "--max_train_steps", str(settings.source_steps),
                                         "--sample_every", str(settings.source_steps),
                                         "--output_dir", str(work / f"source-{kind}")]


def target_runs(settings: Settings, work: Path, layers: int, svd_dir: Path, front_dir: Path) -> dict:
    """Each method's run at depth ``layers``: method → (whether it trains a FINE model, its output folder,
    the recipe's arguments)."""
    starts = {
        "fine": (True, ["--learngene", str(work / "source-fine" / "learngene"),
                        "--sigma_only_steps", str(settings.sigma_only_steps),
                        "--sigma_only_train", settings.sigma_only_train]),
        "random": (False, ["--model_type", "dit"]),
        "svd": (False, ["--model_type", "dit", "--model_name_or_path", str(svd_dir)]),
        "front": (False, ["--model_type", "dit", "--model_name_or_path", str(front_dir)]),
    }
    runs = {}
    for method, (fine, extra) in starts.items():
        run_dir = work / f"L{layers}-{method}"
        runs[method] = (fine, run_dir, recipe_arguments(settings) + [
            "--layers", str(layers), "--max_train_steps", str(settings.steps), "--sample_every", str(settings.steps),
            "--output_dir", str(run_dir), *extra])
    return runs


@torch.no_grad()
def per_layer_svd(dense_source: DiTTransformer2DModel, layers: int, rank: int) -> DiTTransformer2DModel:
    """A dense DiT of ``layers`` blocks: each block the nearest source block, its factorized-type
    weights replaced by their rank-``rank`` truncated SVD."""
    config = {k: v for k, v in dense_source.config.items() if not k.startswith("_")}
    target = DiTTransformer2DModel(**{**config, "num_layers": layers})
    source_state, state = dense_source.state_dict(), target.state_dict()
    count = dense_source.config.num_layers
    for name in state:
        if not name.startswith("transformer_blocks."):
            state[name].copy_(source_state[name])
            continue
        index, rest = name.split(".", 2)[1:]
        nearest = 0 if layers == 1 else round(int(index) * (count - 1) / (layers - 1))
        tensor = source_state[f"transformer_blocks.{nearest}.{rest}"]
        if rest.endswith(".weight") and rest[: -len(".weight")] in {p for paths in FACTORIZED_TYPES.values() for p in paths}:
            u, s, vh = torch.linalg.svd(tensor, full_matrices=False)
            tensor = (u[:, :rank] * s[:rank]) @ vh[:rank]
        state[name].copy_(tensor)
    return target


@torch.no_grad()
def fid_of(model_dir: Path, fine: bool, settings: Settings, net: FeatureNet, reference: torch.Tensor, device: str):
    cls = FINEDiTTransformer2DModel if fine else DiTTransformer2DModel
    pipeline = ClassConditionalImagePipeline(transformer=cls.from_pretrained(model_dir).to(device),
                                             scheduler=DDIMScheduler(num_train_timesteps=1000))
    pipeline.set_progress_bar_config(disable=True)
    labels = [c for c in range(10) for _ in range(settings.samples_per_class)]
    images = []
    generator = torch.Generator(device).manual_seed(settings.seed)
    for start in range(0, len(labels), 500):
        out = pipeline(labels[start:start + 500], num_inference_steps=settings.sampling_steps, generator=generator,
                       output_type="pt").images
        images.append(out.cpu() * 2 - 1)
    images = torch.cat(images)
    return frechet_distance(net.features(images.to(device)).cpu(), reference), images


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--work", default="out/fine_variable_depth", help="where the trained models go")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE",
                        help="override settings, e.g. --set source_layers=6 targets=2,4,6 steps=500")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else Settings()
    for item in args.set:
        field, _, value = item.partition("=")
        if field not in Settings.__dataclass_fields__:
            raise SystemExit(f"unknown setting '{field}'; settings are {', '.join(Settings.__dataclass_fields__)}")
        current = getattr(settings, field)
        parsed = tuple(int(v) for v in value.split(",")) if isinstance(current, tuple) else type(current)(value)
        settings = replace(settings, **{field: parsed})
    work, out = Path(args.work), Path(args.out)

    net, feature_accuracy = train_feature_net(settings, args.device)
    test_images, _ = load_fashion_mnist("test")
    reference = net.features(test_images.to(args.device)).cpu()
    print(f"feature network: test accuracy {feature_accuracy:.3f}", flush=True)

    for kind in ("fine", "dit"):
        diffusion_pretraining.main(source_arguments(settings, kind, work))
    dense_source = DiTTransformer2DModel.from_pretrained(work / "source-dit" / "model")
    front_learngene = Learngene.extract(dense_source, method="front", show_progress=False)
    sources = {kind: json.loads((work / f"source-{kind}" / "results.json").read_text())["heldout_denoising_loss"][-1]["loss"]
               for kind in ("fine", "dit")}
    print(f"sources' held-out denoising loss: FINE {sources['fine']:.4f}, dense {sources['dit']:.4f}", flush=True)

    rows, grids = [], {}
    for layers in settings.targets:
        svd_dir = work / f"svd-init-{layers}"
        per_layer_svd(dense_source, layers, settings.rank).save_pretrained(svd_dir)
        front_dir = work / f"front-init-{layers}"
        front_learngene.build({"layers": layers}, show_progress=False).save_pretrained(front_dir)
        for method, (fine, run_dir, arguments) in target_runs(settings, work, layers, svd_dir, front_dir).items():
            report = diffusion_pretraining.main(arguments)
            fid, images = fid_of(run_dir / "model", fine, settings, net, reference, args.device)
            grids[(layers, method)] = images[:: settings.samples_per_class][:10]
            rows.append({"layers": layers, "method": method, "fid": fid,
                         "heldout_denoising_loss": report["heldout_denoising_loss"][-1]["loss"]})
            print(f"L{layers} {method:6s} FID {fid:8.2f}  held-out denoising loss {rows[-1]['heldout_denoising_loss']:.4f}",
                  flush=True)

    lines = [f"Fashion-MNIST FID ({10 * settings.samples_per_class} samples, {settings.sampling_steps} DDIM steps, "
             f"features of a CNN at {feature_accuracy:.3f} test accuracy) after {settings.steps} steps from each "
             f"initialisation; sources: {settings.source_layers} blocks, {settings.source_steps} steps, held-out "
             f"denoising loss FINE {sources['fine']:.4f} / dense {sources['dit']:.4f}.", "",
             "| depth | method | FID | FID vs random init | held-out denoising loss |", "|---|---|---|---|---|"]
    random_fid = {r["layers"]: r["fid"] for r in rows if r["method"] == "random"}
    for r in rows:
        r["fid_vs_random"] = r["fid"] / random_fid[r["layers"]] - 1
        lines.append(f"| {r['layers']} | {r['method']} | {r['fid']:.2f} | {100 * r['fid_vs_random']:+.1f}% | "
                     f"{r['heldout_denoising_loss']:.4f} |")
    out.mkdir(parents=True, exist_ok=True)
    stem = "fine_variable_depth_quick" if args.quick else "fine_variable_depth"
    report = {"command": " ".join(["python", "benchmarks/fine_variable_depth.py", *(argv or sys.argv[1:])]),
              "settings": asdict(settings), "feature_accuracy": feature_accuracy,
              "source_heldout_denoising_loss": sources, "rows": rows}
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    save_grids(grids, out / f"{stem}.png")
    print("\n".join(lines))
    return report


def save_grids(grids: dict, path: Path) -> None:
    """One row of 10 samples (one per class) for every depth and method."""
    from PIL import Image

    rows = [torch.cat(list(images[:, 0]), dim=1) for images in grids.values()]
    grid = ((torch.cat(rows, dim=0) + 1) / 2 * 255).clamp(0, 255).round().byte().numpy()
    Image.fromarray(grid).save(path)


if __name__ == "__main__":
    main()
