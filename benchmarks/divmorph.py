"""DivMorph on the morphology suite: one controller for many bodies, transfer to a new task, and
single-agent deployment, against the same Transformer without factor units and gates.

Every run goes through ``recipes/morphology_control.py`` (the recipe users run), in this order:

1. **Pre-training** on every train body × train task (12 × 3 pairs) for ``--pretrain-steps``
   environment steps: DivMorph, and the dense baseline (MetaMorph-style: the same Transformer with
   plain linears and a task embedding) with the same PPO settings. Reported per body: the mean
   return of the episodes of the last 20% of training (train tasks), and a deterministic
   evaluation (mean actions, one episode per pair) on every train and held-out body (a held-out
   body's never-trained embedding row is set to the train bodies' mean first).
2. **Transfer** to the held-out task (``stand_tall``) on the train bodies for ``--transfer-steps``
   each, with ``--transfer-seeds`` seeds per mode: DivMorph with only its task tailors training
   (learngenes and body tailors frozen), the same controller fine-tuned whole, the dense baseline
   fine-tuned whole (MetaMorph's transfer), and a new DivMorph controller trained from scratch.
   Each mode's learning rate is chosen first, on a seed that is not reported (``--tuning-seed``),
   from ``--learning-rates`` (tailors train few parameters and can take a larger one; whole-controller
   fine-tuning gets the same chance). Every ``--evaluate-every`` updates a run saves a checkpoint, which the benchmark evaluates
   deterministically (mean actions, one episode per body, the same episodes every time): the
   transfer curves. The training log's returns are not used for them: they average the episodes
   that happened to end during an update, mostly the short ones. Reported: the curves, the mean
   evaluation return over the budget, and the environment steps each mode needs to reach a
   threshold fixed *before* comparing them — the from-scratch runs' final evaluation return — with
   the ratio of whole-controller fine-tuning's steps to the tailors' (the paper: 3×).
3. **Single-agent deployment** of the pre-trained DivMorph controller for every train body on
   ``run_forward``: units whose gate passes ``config.gate_threshold`` merged into a gate-free
   policy; its parameters against the full controller's (the paper: 17× smaller) and its
   deterministic return against the full controller's on the same episodes — equal by
   construction with hard (``top_k``) gates, so it is also compared with the dense baseline's.

Budgets are sized for 2 CPU cores (``--pretrain-steps 400000 --transfer-steps 60000``, two runs at a
time: 0.8M pre-training steps and 0.72M transfer steps); ``--scale`` multiplies every budget (e.g. on a GPU machine). Results:
``benchmarks/results/divmorph.json`` (with the exact command) and ``divmorph_*.png``.

    python benchmarks/divmorph.py [--pretrain-steps N] [--transfer-steps N] [--scale F] [--jobs N] [--threads N]
        [--transfer-seeds S ...] [--evaluate-every UPDATES] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from transformers import set_seed

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "recipes"))
import morphology_control  # noqa: E402

from hf_learngene import DivMorphForContinuousControl  # noqa: E402
from hf_learngene.morphology import (  # noqa: E402
    BODIES,
    TOKEN_DIM,
    HELD_OUT_BODIES,
    HELD_OUT_TASKS,
    TASKS,
    TRAIN_BODIES,
    TRAIN_TASKS,
    make_env,
)
from hf_learngene.morphology.ppo import EnvPool, RunningMeanStd  # noqa: E402

# top_k gates: each agent opens 3% of every block linear's tailor units (2 of 63 morphology and 2 of 63 task units
# in a 128-wide layer) beside 2 learngene units: 6 rank-1 units per linear, which sizes a single agent at 18x fewer
# parameters than the full controller; the limb-token input projection is dense and shared (the config's
# default); the measured question is then the return at that size
MODEL = ["--hidden_size", "128", "--num_layers", "3", "--num_heads", "2", "--intermediate_size", "256",
         "--unit_split", "0.02,0.49,0.49", "--gate", "top_k", "--gate_density", "0.03"]
PPO = ["--rollout_steps", "128", "--minibatch_size", "512", "--ppo_epochs", "4", "--learning_rate", "3e-4",
       "--no_progress_bar", "--overwrite_output_dir"]
TAIL = 0.2  # the share of the last updates whose returns are a run's final return


def run_recipes(runs: dict[Path, list[str]], jobs: int, threads: int) -> None:
    """Run the recipe once per output folder, ``jobs`` at a time, each in its own process with ``threads``
    torch threads (the environments of one run are stepped one after the other, so parallel runs are how
    several cores are used). A failed run stops the benchmark with the end of its log."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}

    def run(output_dir: Path, argv: list[str]) -> None:
        started = time.perf_counter()
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        log = output_dir.with_name(output_dir.name + ".log")
        with open(log, "w") as handle:
            code = subprocess.run([sys.executable, str(ROOT / "recipes" / "morphology_control.py"), "--output_dir",
                                   str(output_dir), *argv], env=env, stdout=handle, stderr=subprocess.STDOUT).returncode
        if code:
            raise RuntimeError(f"{output_dir.name} failed ({code}); the end of {log}:\n{log.read_text()[-3000:]}")
        print(f"  {output_dir.name}: {time.perf_counter() - started:.0f}s", flush=True)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(run, output_dir, argv) for output_dir, argv in runs.items()]:
            future.result()


def training_log(output_dir: Path) -> list[dict]:
    with open(output_dir / "metrics.csv", newline="") as handle:
        return [{"step": int(r["step"]), "mean_return": float(r["mean_return"]),
                 "by_pair": json.loads(r["returns_by_body_task"])} for r in csv.DictReader(handle)]


def final_return(rows: list[dict]) -> float:
    tail = rows[-max(1, int(len(rows) * TAIL)):]
    values = [r["mean_return"] for r in tail if np.isfinite(r["mean_return"])]
    return float(np.mean(values)) if values else float("nan")


def final_training_return(rows: list[dict]) -> float:
    """A training log's final return: each (body, task) pair's mean over the last updates, averaged over the
    pairs (a pair whose episodes are long finishes few of them and appears in few rows)."""
    by_pair: dict[str, list[float]] = {}
    for row in rows[-max(1, int(len(rows) * TAIL)):]:
        for pair, value in row["by_pair"].items():
            by_pair.setdefault(pair, []).append(value)
    return float(np.mean([np.mean(values) for values in by_pair.values()])) if by_pair else float("nan")


def final_by_body(rows: list[dict]) -> dict[str, float]:
    """:func:`final_training_return` per body (its pairs' means averaged)."""
    by_pair: dict[str, list[float]] = {}
    for row in rows[-max(1, int(len(rows) * TAIL)):]:
        for pair, value in row["by_pair"].items():
            by_pair.setdefault(pair, []).append(value)
    by_body: dict[str, list[float]] = {}
    for pair, values in by_pair.items():
        by_body.setdefault(BODIES[int(pair.split("/")[0])], []).append(float(np.mean(values)))
    return {body: float(np.mean(means)) for body, means in by_body.items()}


def steps_to(rows: list[dict], threshold: float, consecutive: int = 2) -> int | None:
    """The first step from which ``consecutive`` evaluations in a row reach ``threshold`` (None: never
    within the budget); one evaluation alone can cross it by the luck of its episodes."""
    above = [np.isfinite(r["mean_return"]) and r["mean_return"] >= threshold for r in rows]
    return next((rows[i]["step"] for i in range(len(rows) - consecutive + 1) if all(above[i:i + consecutive])), None)


def mean_steps_to(steps: list[int | None], budget: int) -> float:
    return float(np.mean([budget if s is None else s for s in steps]))


def mean_curve(curves: list[list[dict]]) -> list[dict]:
    """The seeds' evaluation curves averaged point by point (they evaluate at the same steps)."""
    return [{"step": points[0]["step"], "mean_return": float(np.mean([p["mean_return"] for p in points]))}
            for points in zip(*curves)]


def starting_controller(argv: list[str]) -> tuple[DivMorphForContinuousControl, RunningMeanStd]:
    """The controller a recipe run with ``argv`` starts from, built as the recipe builds it (seeded; a task
    never trained starts at the trained tasks' mean row), and the token statistics it starts with."""
    args = morphology_control.parse_args(argv)
    set_seed(args.seed)
    model = morphology_control.make_controller(args).eval()
    stats = morphology_control.observation_stats_of(Path(args.model)) if args.model else None
    return model, RunningMeanStd.from_file(stats) if stats is not None else RunningMeanStd(TOKEN_DIM)


def evaluation_curve(run_dir: Path, argv: list[str], pairs: list[tuple[str, str]], max_steps: int,
                     threads: int = 1) -> list[dict]:
    """The controller the run (``argv``) started from and every checkpoint it saved, evaluated with
    :func:`evaluate`; the return averaged over ``pairs``. Unlike the training log's returns (the
    episodes that happened to end during an update, mostly the short ones), every point scores the
    same episodes."""
    torch.set_num_threads(threads)

    def point(step: int, model, stats) -> dict:
        returns = evaluate(controller_actions(model), pairs, stats, max_steps)
        return {"step": step, "mean_return": float(np.mean(list(returns.values())))}

    points = [point(0, *starting_controller(["--output_dir", str(run_dir), *argv]))]
    for folder in sorted((run_dir / "checkpoints").glob("step-*"), key=lambda f: int(f.name.split("-")[1])):
        model = DivMorphForContinuousControl.from_pretrained(folder / "model").eval()
        points.append(point(int(folder.name.split("-")[1]), model,
                            RunningMeanStd.from_file(folder / morphology_control.CHECKPOINT_FILE)))
    return points


@torch.no_grad()
def evaluate(act, pairs: list[tuple[str, str]], stats: RunningMeanStd, max_steps: int) -> dict[str, float]:
    """One episode per pair with the policy's mean actions; the episode's return per pair."""
    pool = EnvPool([lambda b=b, t=t: make_env(b, t, max_episode_steps=max_steps) for b, t in pairs], seed=12345)
    returns: dict[str, float] = {}
    while len(returns) < len(pairs):
        batch = pool.batch()
        mask = torch.as_tensor(batch["mask"]).bool()
        tokens = stats.normalize(torch.as_tensor(batch["tokens"], dtype=torch.float32), mask)
        actions = act(tokens, mask, torch.as_tensor(batch["action_mask"]).bool(),
                      torch.as_tensor(batch["body"]), torch.as_tensor(batch["task"]))
        for episode in pool.step(actions.clamp(-1, 1).numpy())[4]:  # the first episode of each pair counts
            returns.setdefault(f"{BODIES[episode['body']]}/{TASKS[episode['task']]}", episode["return"])
    pool.close()
    return returns


def controller_actions(model):
    def act(tokens, mask, action_mask, body, task):
        return model(tokens, mask, body, task, action_mask=action_mask).action_mean
    return act


def plot(curves: dict[str, list[dict]], threshold: float | None, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rows in curves.items():
        ax.plot([r["step"] for r in rows], [r["mean_return"] for r in rows], label=name)
    if threshold is not None:
        ax.axhline(threshold, color="gray", linestyle="--", label="threshold (scratch's final evaluation return)")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("mean episode return")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-steps", type=int, default=400_000)
    parser.add_argument("--transfer-steps", type=int, default=60_000)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--max-episode-steps", type=int, default=1000)
    parser.add_argument("--eval-episode-steps", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each run")
    parser.add_argument("--jobs", type=int, default=2, help="recipe runs at once (each steps its environments on one core)")
    parser.add_argument("--transfer-seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--tuning-seed", type=int, default=0, help="the transfer seed the learning rates are chosen on")
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[3e-4, 1e-3, 3e-3],
                        help="the transfer learning rates tried for each mode")
    parser.add_argument("--evaluate-every", type=int, default=3,
                        help="transfer runs save (and the benchmark evaluates) a checkpoint every this many PPO updates")
    parser.add_argument("--workdir", default="/tmp/hf-learngene-divmorph")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "divmorph.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work, out = Path(args.workdir), Path(args.out)
    pretrain, transfer = int(args.pretrain_steps * args.scale), int(args.transfer_steps * args.scale)
    episode = ["--max_episode_steps", str(args.max_episode_steps)]
    started = time.perf_counter()
    results: dict = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
                     "environment": {"git_commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT,
                                                                  capture_output=True, text=True).stdout.strip(),
                                     "torch": torch.__version__, "python": platform.python_version(), "threads": args.threads,
                                     "jobs": args.jobs},
                     "model": MODEL, "ppo": PPO, "budgets": {"pretrain_steps": pretrain, "transfer_steps": transfer}}

    print(f"pre-training on {len(TRAIN_BODIES)} bodies x {len(TRAIN_TASKS)} tasks, {pretrain} steps each model")
    run_recipes({work / "divmorph": [*MODEL, *PPO, *episode, "--total_steps", str(pretrain)],
                 work / "baseline": [*MODEL[:8], "--architecture", "baseline", *PPO, *episode,
                                     "--total_steps", str(pretrain)]}, args.jobs, args.threads)
    curves = {name: training_log(work / name) for name in ("divmorph", "baseline")}
    stats = {name: RunningMeanStd.from_file(work / name / "model" / morphology_control.OBSERVATION_STATS)
             for name in curves}
    models = {name: DivMorphForContinuousControl.from_pretrained(work / name / "model").eval() for name in curves}
    # a held-out body's embedding row was never trained: it starts at the train bodies' mean (its gates are the
    # average body's, the same for every held-out body), as the recipe does for a body it never trained on
    models["divmorph"].init_unseen("body", [BODIES.index(b) for b in HELD_OUT_BODIES],
                                   [BODIES.index(b) for b in TRAIN_BODIES])
    eval_pairs = [(b, t) for b in TRAIN_BODIES + HELD_OUT_BODIES for t in TRAIN_TASKS]
    evaluation = {name: evaluate(controller_actions(models[name]), eval_pairs, stats[name], args.eval_episode_steps)
                  for name in curves}

    def evaluation_mean(name: str, bodies) -> float:  # every (body, task) pair weighs the same
        return float(np.mean([evaluation[name][f"{b}/{t}"] for b in bodies for t in TRAIN_TASKS]))

    results["pretraining"] = {
        name: {"evaluation_mean": {"train_bodies": evaluation_mean(name, TRAIN_BODIES),
                                   "held_out_bodies": evaluation_mean(name, HELD_OUT_BODIES)},
               "evaluation_by_body": {b: float(np.mean([evaluation[name][f"{b}/{t}"] for t in TRAIN_TASKS]))
                                      for b in TRAIN_BODIES + HELD_OUT_BODIES},
               "final_training_return": final_training_return(rows), "final_training_return_by_train_body": final_by_body(rows),
               "parameters": sum(p.numel() for p in models[name].parameters())}
        for name, rows in curves.items()}
    results["pretraining_measure"] = (
        f"evaluation: mean actions, one {args.eval_episode_steps}-step episode per (body, train task) pair, every pair "
        "weighing the same; training return: the mean over (body, task) pairs of the episodes that ended in the last "
        f"{TAIL:.0%} of updates")
    for name in curves:
        print(f"  {name}: evaluation return {results['pretraining'][name]['evaluation_mean']}", flush=True)
    plot(curves, None, out.with_name("divmorph_pretraining.png"), "pre-training, train bodies x train tasks")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))

    print(f"transfer to {HELD_OUT_TASKS} on the train bodies, {transfer} steps each mode, seeds {args.transfer_seeds}")
    held_out = ["--tasks", "held_out", *episode, "--total_steps", str(transfer),
                "--checkpointing_steps", str(args.evaluate_every)]
    sources = {"tailors": ["--model", str(work / "divmorph" / "model"), "--transfer", "tailors"],
               "full": ["--model", str(work / "divmorph" / "model"), "--transfer", "full"],
               "baseline_full": ["--model", str(work / "baseline" / "model"), "--transfer", "full"],
               "scratch": MODEL}
    transfer_pairs = [(body, task) for body in TRAIN_BODIES for task in HELD_OUT_TASKS]

    def run_and_evaluate(runs: dict) -> dict:  # {key: (folder, argv)} -> {key: evaluation curve}
        run_recipes({folder: argv for folder, argv in runs.values()}, args.jobs, args.threads)
        with ProcessPoolExecutor(args.jobs) as pool:  # evaluations, jobs at a time
            futures = {key: pool.submit(evaluation_curve, folder, argv, transfer_pairs, args.eval_episode_steps,
                                        args.threads) for key, (folder, argv) in runs.items()}
            return {key: future.result() for key, future in futures.items()}

    # each mode's learning rate, chosen on a seed that is not reported: the best mean evaluation return
    sweep = run_and_evaluate({(mode, lr): (work / f"tune-{mode}-lr{lr:g}", [
        *argv, *PPO, *held_out, "--seed", str(args.tuning_seed), "--learning_rate", f"{lr:g}"])
        for mode, argv in sources.items() for lr in args.learning_rates})
    sweep_returns = {key: float(np.mean([r["mean_return"] for r in curve])) for key, curve in sweep.items()}
    learning_rate = {mode: max(args.learning_rates, key=lambda lr: sweep_returns[mode, lr]) for mode in sources}
    # fixed before the reported runs: what training from scratch reaches at the end of the budget, on the tuning seed
    threshold = final_return(sweep["scratch", learning_rate["scratch"]])
    print(f"  learning rates: {learning_rate}; threshold {threshold:.1f}", flush=True)
    curves_by_run = run_and_evaluate({(mode, seed): (work / f"transfer-{mode}-seed{seed}", [
        *argv, *PPO, *held_out, "--seed", str(seed), "--learning_rate", f"{learning_rate[mode]:g}"])
        for seed in args.transfer_seeds for mode, argv in sources.items()})
    evaluated = {mode: [curves_by_run[mode, seed] for seed in args.transfer_seeds] for mode in sources}
    budget = max(r["step"] for curves_ in evaluated.values() for c in curves_ for r in c)
    steps = {mode: [steps_to(curve, threshold) for curve in curves_] for mode, curves_ in evaluated.items()}
    mean_steps = {mode: mean_steps_to(values, budget) for mode, values in steps.items()}
    results["transfer"] = {
        "task": HELD_OUT_TASKS[0], "seeds": args.transfer_seeds, "threshold": threshold,
        "learning_rate": learning_rate,
        "learning_rate_sweep": {"seed": args.tuning_seed, "rule": "each mode's best mean evaluation return",
                                "mean_evaluation_return": {mode: {f"{lr:g}": sweep_returns[mode, lr]
                                                                  for lr in args.learning_rates} for mode in sources}},
        "measure": (f"deterministic evaluation (mean actions, one {args.eval_episode_steps}-step episode per train "
                    f"body) of the starting controller and of the checkpoint saved every {args.evaluate_every} "
                    "updates, averaged over the bodies"),
        "threshold_rule": ("the from-scratch run's final evaluation return (its last 20% of evaluations) on the "
                           "tuning seed, at its chosen learning rate"),
        "steps_rule": "the first evaluation from which two in a row reach the threshold",
        "steps_to_threshold": steps,
        "censored": {mode: sum(s is None for s in values) for mode, values in steps.items()},
        "mean_steps_to_threshold": mean_steps,
        "mean_steps_rule": f"a seed that never reaches the threshold counts as the whole budget ({budget} steps)",
        "mean_evaluation_return": {mode: float(np.mean([[r["mean_return"] for r in c] for c in curves_]))
                                   for mode, curves_ in evaluated.items()},
        "final_return": {mode: float(np.mean([final_return(c) for c in curves_])) for mode, curves_ in evaluated.items()},
        "full_over_tailors_steps": mean_steps["full"] / mean_steps["tailors"] if mean_steps["tailors"] else None,
        "curves": {mode: [[(r["step"], r["mean_return"]) for r in c] for c in curves_]
                   for mode, curves_ in evaluated.items()},
    }
    plot({mode: mean_curve(curves_) for mode, curves_ in evaluated.items()}, threshold,
         out.with_name("divmorph_transfer.png"), f"transfer to {HELD_OUT_TASKS[0]} (mean of {len(args.transfer_seeds)} seeds)")
    out.write_text(json.dumps(results, indent=2))
    for mode in sources:
        print(f"  {mode:14s} steps to {threshold:.1f}: {steps[mode]} (mean {mean_steps[mode]:.0f}), "
              f"mean evaluation return {results['transfer']['mean_evaluation_return'][mode]:.1f}")

    print("single-agent deployment (run_forward)")
    full = models["divmorph"]
    task = TASKS.index("run_forward")
    rows = []
    for body in TRAIN_BODIES:
        agent = full.single_agent(BODIES.index(body), task).eval()
        summary = agent.deployment_summary()
        pair = [(body, "run_forward")]
        full_return = evaluate(controller_actions(full), pair, stats["divmorph"], args.eval_episode_steps)
        baseline_return = evaluate(controller_actions(models["baseline"]), pair, stats["baseline"],
                                   args.eval_episode_steps)
        agent_return = evaluate(lambda tokens, mask, action_mask, b, t: agent(tokens, mask, action_mask).action_mean,
                                pair, stats["divmorph"], args.eval_episode_steps)
        rows.append({"body": body, "parameters": summary["parameters"], "full_parameters": summary["source_parameters"],
                     "compression": summary["compression"],
                     "compression_vs_dense_baseline": results["pretraining"]["baseline"]["parameters"] / summary["parameters"],
                     "max_relative_weight_change": summary["max_relative_weight_change"],
                     "return": agent_return[f"{body}/run_forward"], "full_return": full_return[f"{body}/run_forward"],
                     "baseline_return": baseline_return[f"{body}/run_forward"]})
        print(f"  {body:28s} {summary['parameters']:>8,} params ({summary['compression']:.1f}x smaller), return "
              f"{rows[-1]['return']:.1f} vs full {rows[-1]['full_return']:.1f}, "
              f"dense baseline {rows[-1]['baseline_return']:.1f}")
    results["single_agent"] = rows

    def kept(value: float, reference: float) -> bool:  # ">= 90% of the reference", meaningful for negative returns too
        return value >= reference - 0.1 * abs(reference)

    results["single_agent_summary"] = {
        "rule": "return >= reference - 0.1 * |reference| (90% of it when positive)",
        "min_compression": min(r["compression"] for r in rows),
        "min_compression_vs_dense_baseline": min(r["compression_vs_dense_baseline"] for r in rows),
        "bodies": len(rows),
        "at_90_percent_of_full": sum(kept(r["return"], r["full_return"]) for r in rows),
        "at_90_percent_of_dense_baseline": sum(kept(r["return"], r["baseline_return"]) for r in rows),
    }
    print(f"  single agents: >= {results['single_agent_summary']['min_compression']:.1f}x smaller; at 90% of the "
          f"full model's return on {results['single_agent_summary']['at_90_percent_of_full']}/{len(rows)} bodies, of "
          f"the dense baseline's on {results['single_agent_summary']['at_90_percent_of_dense_baseline']}/{len(rows)}")
    results["seconds"] = time.perf_counter() - started
    results["complete"] = True
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out} ({results['seconds'] / 60:.1f} min)")


if __name__ == "__main__":
    main()
