"""FINE against its competitors at matched cost: the same pre-training compute, and the same stored size.

``fine_variable_depth.py`` compares FINE with a dense DiT's per-layer SVD and FRONT resize, but the
dense source there stores more than FINE's learngene (3.3× at the defaults here, 12× counting only the
factorized weights) and ends its pre-training at a better loss.
This benchmark asks what a user choosing between them pays and gets:

* **Matched pre-training compute.** Every source (a FINE DiT at each rank in ``ranks``, and a dense DiT
  of the same depth, width and heads) trains the same steps on the same batches; the wall time of each
  is recorded beside it.
* **Matched stored size.** A FINE learngene cannot store as many values as its dense twin: its rank is
  bounded by the smaller side of each matrix, and at that bound it still stores
  ``(m + n)·r + L·r`` values per matrix type against the dense ``L·m·n``. So the dense baselines are
  truncated to FINE's storage instead: the per-layer SVD at the largest rank whose factors (U, σ, V of
  every source block) fit in the values the FINE learngene stores, and FRONT at the largest ``keep``
  whose coefficients fit. Their untruncated forms (per-layer SVD at FINE's rank, FRONT keeping every
  coefficient) run beside them, with the values they store.
* **What could close the gap**, one lever at a time from FINE's base setting (the first rank,
  ``sigma_only_steps[0]``, ``sigma_inits[0]``): a higher rank, the σ-only stage's length, and the σ
  initialisation.

Every model is then trained the same ``steps`` at depth ``target_layers`` (FINE's σ-only steps count in
them) and scored with FID against the Fashion-MNIST test set (features of a CNN trained here, as in
``fine_variable_depth.py``) and the held-out denoising loss. Random init and FINE's base setting are
trained again with each seed of ``repeat_seeds`` (other batches and noise, the same samplers), so the
table shows how far one run's FID moves by chance.

The budget is dominated by what both sides store whole: diffusers' DiT keeps a timestep and label
embedder in every block, so most of a small FINE learngene is ordinary tensors, and the per-layer SVD
that fits beside them has a low rank. The report gives the split (``fine_factor_values``).

    python benchmarks/fine_matched_cost.py            # CPU-sized defaults (80 minutes on 2 shared cores)
    python benchmarks/fine_matched_cost.py --quick    # minutes

Outputs in ``--out``: ``fine_matched_cost.json`` (with the command line), ``.md`` and ``.png`` (one row
of samples, one per class, for every run).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from diffusers import DiTTransformer2DModel

sys.path.insert(0, str(Path(__file__).parents[1] / "recipes"))
sys.path.insert(0, str(Path(__file__).parent))
import diffusion_pretraining  # noqa: E402
import fine_variable_depth as variable_depth  # noqa: E402
from image_data import load_fashion_mnist  # noqa: E402

from hf_learngene import Learngene  # noqa: E402
from hf_learngene.modeling.fine_dit import FACTORIZED_TYPES, FINEDiTTransformer2DModel  # noqa: E402
from hf_learngene.modeling.fine_learngene import FINELearngene  # noqa: E402


@dataclass(frozen=True)
class Settings:
    source_layers: int = 8
    target_layers: int = 6
    heads: int = 2
    head_dim: int = 32
    ranks: tuple[int, ...] = (32, 64)
    source_steps: int = 4000
    steps: int = 400
    sigma_only_steps: tuple[int, ...] = (50, 0, 200)
    sigma_inits: tuple[str, ...] = ("interpolate", "linear")
    batch: int = 64
    lr: float = 5e-4
    samples_per_class: int = 50
    sampling_steps: int = 25
    feature_steps: int = 1500
    seed: int = 0
    repeat_seeds: tuple[int, ...] = (1,)


QUICK = Settings(source_layers=4, target_layers=3, heads=2, head_dim=16, ranks=(8, 16), source_steps=40, steps=20,
                 sigma_only_steps=(5, 0), sigma_inits=("interpolate", "linear"), batch=16, lr=1e-3,
                 samples_per_class=4, sampling_steps=4, feature_steps=50)


def variable_depth_settings(settings: Settings, rank: int) -> variable_depth.Settings:
    """The shared recipe arguments come from ``fine_variable_depth`` so both benchmarks train alike."""
    return variable_depth.Settings(source_layers=settings.source_layers, heads=settings.heads,
                                   head_dim=settings.head_dim, rank=rank, source_steps=settings.source_steps,
                                   steps=settings.steps, batch=settings.batch, lr=settings.lr, seed=settings.seed,
                                   samples_per_class=settings.samples_per_class,
                                   sampling_steps=settings.sampling_steps, feature_steps=settings.feature_steps)


def stored_values(module: torch.nn.Module) -> int:
    return sum(tensor.numel() for tensor in module.state_dict().values())


def factorized_weights(dense: DiTTransformer2DModel) -> dict[str, torch.Tensor]:
    """Every block weight FINE factorizes, by its name in the dense model."""
    paths = {path for group in FACTORIZED_TYPES.values() for path in group}
    return {name: tensor for name, tensor in dense.state_dict().items()
            if name.startswith("transformer_blocks.") and name.endswith(".weight")
            and name.split(".", 2)[2][: -len(".weight")] in paths}


def svd_stored_values(dense: DiTTransformer2DModel, rank: int) -> int:
    """Values a per-layer SVD learngene of ``dense`` stores: U, σ, V at ``rank`` for every factorized
    weight of every source block, the other tensors whole."""
    weights = factorized_weights(dense)
    truncated = sum(min(rank, min(w.shape)) * (sum(w.shape) + 1) for w in weights.values())
    return stored_values(dense) - sum(w.numel() for w in weights.values()) + truncated


def svd_rank_for(dense: DiTTransformer2DModel, budget: int) -> int:
    """The largest per-layer SVD rank whose stored values fit in ``budget`` (at least 1)."""
    largest = max(min(w.shape) for w in factorized_weights(dense).values())
    fitting = [rank for rank in range(1, largest + 1) if svd_stored_values(dense, rank) <= budget]
    if not fitting:
        raise SystemExit(f"even a rank-1 per-layer SVD stores more than {budget} values")
    return max(fitting)


def front_keep_for(dense: DiTTransformer2DModel, budget: int, iterations: int = 20) -> tuple[float, int]:
    """The largest FRONT ``keep`` (one ratio for every resizable axis) whose learngene stores at most
    ``budget`` values, by bisection; returns it with the values it stores."""
    def stored(keep: float) -> int:
        return Learngene.extract(dense, method="front", keep=keep, show_progress=False).summary()["stored_values"]

    low, high = 0.0, 1.0
    best = None
    for _ in range(iterations):
        middle = (low + high) / 2
        if middle > 0 and stored(middle) <= budget:
            low, best = middle, middle
        else:
            high = middle
    if best is None:
        raise SystemExit(f"no FRONT keep stores at most {budget} values")
    return best, stored(best)


def factor_values(learngene_folder: Path) -> int:
    """Values of a FINE learngene that are its factors and σ (the rest are ordinary tensors stored whole)."""
    learngene = FINELearngene.from_pretrained(learngene_folder)
    return stored_values(learngene.factors) + stored_values(learngene.sigmas)


def pretrain_sources(settings: Settings, work: Path) -> dict:
    """Each source with the same steps and batches; its folder, held-out loss and wall time."""
    sources = {}
    for kind, rank in [("fine", rank) for rank in settings.ranks] + [("dit", settings.ranks[0])]:
        name = f"fine-r{rank}" if kind == "fine" else "dense"
        folder = work / name
        start = time.perf_counter()
        report = diffusion_pretraining.main(
            variable_depth.source_arguments(variable_depth_settings(settings, rank), kind, folder))
        sources[name] = {"folder": folder / f"source-{kind}", "end_to_end_seconds": time.perf_counter() - start,
                         "heldout_denoising_loss": report["heldout_denoising_loss"][-1]["loss"],
                         "steps": report["steps"], "batch": settings.batch}
        print(f"source {name}: held-out denoising loss {sources[name]['heldout_denoising_loss']:.4f}, "
              f"{sources[name]['end_to_end_seconds']:.0f} s", flush=True)
    return sources


def target_runs(settings: Settings, sources: dict, work: Path) -> list[dict]:
    """Every run at the target depth: its name, group, stored values, whether it trains a FINE model and
    the recipe's arguments beyond the shared ones."""
    base_rank, base_sigma_steps, base_init = settings.ranks[0], settings.sigma_only_steps[0], settings.sigma_inits[0]
    dense = DiTTransformer2DModel.from_pretrained(sources["dense"]["folder"] / "model")
    dense_values = stored_values(dense)
    learngenes = {rank: sources[f"fine-r{rank}"]["folder"] / "learngene" for rank in settings.ranks}
    fine_values = {rank: stored_values(FINELearngene.from_pretrained(folder)) for rank, folder in learngenes.items()}
    budget = fine_values[base_rank]

    runs = [{"name": "random", "group": "baseline", "stored_values": 0, "fine": False, "arguments": ["--model_type", "dit"]}]
    runs += [{"name": f"random, seed {seed}", "group": "baseline: another seed", "stored_values": 0, "fine": False,
              "seed": seed, "arguments": ["--model_type", "dit"]} for seed in settings.repeat_seeds]

    def fine_run(name: str, rank: int, sigma_steps: int, sigma_init: str, group: str) -> dict:
        return {"name": name, "group": group, "stored_values": fine_values[rank], "fine": True, "rank": rank,
                "sigma_only_steps": sigma_steps, "sigma_init": sigma_init,
                "arguments": ["--learngene", str(learngenes[rank]), "--sigma_only_steps", str(sigma_steps),
                              "--sigma_init", sigma_init]}

    runs.append(fine_run(f"fine r{base_rank}", base_rank, base_sigma_steps, base_init, "FINE (base)"))
    runs += [fine_run(f"fine r{base_rank}, seed {seed}", base_rank, base_sigma_steps, base_init,
                      "FINE (base): another seed") | {"seed": seed} for seed in settings.repeat_seeds]
    runs += [fine_run(f"fine r{rank}", rank, base_sigma_steps, base_init, "FINE: rank") for rank in settings.ranks[1:]]
    runs += [fine_run(f"fine r{base_rank}, σ-only {steps}", base_rank, steps, base_init, "FINE: σ-only steps")
             for steps in settings.sigma_only_steps[1:]]
    runs += [fine_run(f"fine r{base_rank}, σ {init}", base_rank, base_sigma_steps, init, "FINE: σ init")
             for init in settings.sigma_inits[1:]]

    matched_rank = svd_rank_for(dense, budget)
    keep, front_values = front_keep_for(dense, budget)
    def front_build(keep: float) -> DiTTransformer2DModel:
        learngene = Learngene.extract(dense, method="front", keep=keep, show_progress=False)
        return learngene.build({"layers": settings.target_layers}, show_progress=False)

    starts = [
        (f"svd r{matched_rank} (FINE's storage)", "dense, matched storage", {"svd_rank": matched_rank},
         variable_depth.per_layer_svd(dense, settings.target_layers, matched_rank), svd_stored_values(dense, matched_rank)),
        (f"front keep {keep:.3f} (FINE's storage)", "dense, matched storage", {"front_keep": keep},
         front_build(keep), front_values),
        (f"svd r{base_rank}", "dense, more storage", {"svd_rank": base_rank},
         variable_depth.per_layer_svd(dense, settings.target_layers, base_rank), svd_stored_values(dense, base_rank)),
        ("front keep 1", "dense, more storage", {"front_keep": 1.0}, front_build(1.0), dense_values),
    ]
    for index, (name, group, option, model, values) in enumerate(starts):
        folder = work / f"init-{index}"
        model.save_pretrained(folder)
        runs.append({"name": name, "group": group, "stored_values": values, "fine": False, **option,
                     "arguments": ["--model_type", "dit", "--model_name_or_path", str(folder)]})
    for run in runs:
        run["stored_vs_fine"] = run["stored_values"] / budget
    return runs


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny models and budgets: minutes on a CPU")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--work", default="out/fine_matched_cost", help="where the trained models go")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else Settings()
    work, out = Path(args.work), Path(args.out)

    shared = variable_depth_settings(settings, settings.ranks[0])
    net, feature_accuracy = variable_depth.train_feature_net(shared, args.device)
    test_images, _ = load_fashion_mnist("test")
    reference = net.features(test_images.to(args.device)).cpu()
    print(f"feature network: test accuracy {feature_accuracy:.3f}", flush=True)

    sources = pretrain_sources(settings, work)
    rows, grids = [], {}
    for run in target_runs(settings, sources, work):
        run_dir = work / f"L{settings.target_layers}-{len(rows)}"
        run["run_dir"] = str(run_dir)
        seeded = replace(shared, seed=run.get("seed", settings.seed))  # FID's samplers keep the shared seed
        arguments = variable_depth.recipe_arguments(seeded) + [
            "--layers", str(settings.target_layers), "--max_train_steps", str(settings.steps),
            "--sample_every", str(settings.steps), "--output_dir", str(run_dir), *run.pop("arguments")]
        report = diffusion_pretraining.main(arguments)
        fid, images = variable_depth.fid_of(run_dir / "model", run["fine"], shared, net, reference, args.device)
        grids[run["name"]] = images[:: settings.samples_per_class][:10]
        rows.append(run | {"fid": fid, "heldout_denoising_loss": report["heldout_denoising_loss"][-1]["loss"]})
        print(f"{run['name']:32s} FID {fid:8.2f}  held-out denoising loss {rows[-1]['heldout_denoising_loss']:.4f}  "
              f"stores {run['stored_values']} values ({run['stored_vs_fine']:.2f}× FINE's)", flush=True)

    random_fid = next(row["fid"] for row in rows if row["name"] == "random")
    for row in rows:
        row["fid_vs_random"] = row["fid"] / random_fid - 1
    report = {"command": shlex.join(["python", "benchmarks/fine_matched_cost.py",
                                     *(argv if argv is not None else sys.argv[1:])]),
              "settings": asdict(settings), "feature_accuracy": feature_accuracy,
              "sources": {name: {k: (str(v) if isinstance(v, Path) else v) for k, v in source.items()}
                          for name, source in sources.items()},
              "fine_factor_values": {rank: factor_values(sources[f"fine-r{rank}"]["folder"] / "learngene")
                                     for rank in settings.ranks},
              "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    stem = out / ("fine_matched_cost_quick" if args.quick else "fine_matched_cost")
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown_table(report)
    stem.with_suffix(".md").write_text(table)
    variable_depth.save_grids(grids, stem.with_suffix(".png"))
    print(table)
    return report


def markdown_table(report: dict) -> str:
    settings = report["settings"]
    lines = [f"Fashion-MNIST FID ({10 * settings['samples_per_class']} samples, {settings['sampling_steps']} DDIM steps, "
             f"features of a CNN at {report['feature_accuracy']:.3f} test accuracy) after {settings['steps']} steps at "
             f"depth {settings['target_layers']} from each initialisation. Sources: {settings['source_layers']} blocks, "
             f"{settings['source_steps']} steps of batch {settings['batch']} each; held-out denoising loss (end-to-end "
             "seconds of the recipe run, with loading, evaluation and saving, on a shared machine): "
             + ", ".join(f"{name} {s['heldout_denoising_loss']:.4f} ({s['end_to_end_seconds']:.0f} s)"
                         for name, s in report["sources"].items()) + ". Of each FINE learngene's stored values, "
             + ", ".join(f"r{rank}: {values:,} are factors and σ" for rank, values in report["fine_factor_values"].items())
             + "; the rest are ordinary tensors, stored whole by FINE and the per-layer SVD alike.", "",
             "| start | compared as | stored values (× FINE's) | FID | FID vs random | held-out denoising loss |",
             "|---|---|---|---|---|---|"]
    for row in report["rows"]:
        lines.append(f"| {row['name']} | {row['group']} | {row['stored_values']:,} ({row['stored_vs_fine']:.2f}×) | "
                     f"{row['fid']:.2f} | {100 * row['fid_vs_random']:+.1f}% | {row['heldout_denoising_loss']:.4f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
