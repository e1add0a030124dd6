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
   each: DivMorph with only its task tailors training (learngenes and body tailors frozen), the
   same controller fine-tuned whole, and a new DivMorph controller trained from scratch. Reported:
   the return curves and the environment steps each needs to reach a threshold fixed *before*
   comparing them — the final return of the from-scratch run (mean of its last 20% of updates) —
   and the ratio of whole-controller fine-tuning's steps to the tailors' (the paper: 3×).
3. **Single-agent deployment** of the pre-trained DivMorph controller for every train body on
   ``run_forward``: units whose gate passes ``config.gate_threshold`` merged into a gate-free
   policy; its parameters against the full controller's (the paper: 17× smaller) and its
   deterministic return against the full controller's on the same episodes — equal by
   construction with hard (``top_k``) gates, so it is also compared with the dense baseline's.

Budgets are sized for 2 CPU cores (``--pretrain-steps 400000 --transfer-steps 60000``: 0.98M steps in
all); ``--scale`` multiplies every budget (e.g. on a GPU machine). Results:
``benchmarks/results/divmorph.json`` (with the exact command) and ``divmorph_*.png``.

    python benchmarks/divmorph.py [--pretrain-steps N] [--transfer-steps N] [--scale F] [--threads N] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "recipes"))
import morphology_control  # noqa: E402

from hf_learngene import DivMorphForContinuousControl  # noqa: E402
from hf_learngene.morphology import (  # noqa: E402
    BODIES,
    HELD_OUT_BODIES,
    HELD_OUT_TASKS,
    TASKS,
    TRAIN_BODIES,
    TRAIN_TASKS,
    make_env,
)
from hf_learngene.morphology.ppo import EnvPool, RunningMeanStd  # noqa: E402

# top_k gates: each agent opens 3% of every linear's tailor units (2 of 62 in a 128-wide layer) beside a
# 3% learngene, which sizes a single agent at ~17x fewer parameters than the full controller; the
# measured question is then the return at that size
MODEL = ["--hidden_size", "128", "--num_layers", "3", "--num_heads", "2", "--intermediate_size", "256",
         "--unit_split", "0.03,0.485,0.485", "--gate", "top_k", "--gate_density", "0.03"]
PPO = ["--rollout_steps", "128", "--minibatch_size", "512", "--ppo_epochs", "4", "--learning_rate", "3e-4",
       "--no_progress_bar", "--overwrite_output_dir"]
TAIL = 0.2  # the share of the last updates whose returns are a run's final return


def run_recipe(output_dir: Path, *argv: str) -> list[dict]:
    started = time.perf_counter()
    morphology_control.main(["--output_dir", str(output_dir), *argv])
    print(f"  {output_dir.name}: {time.perf_counter() - started:.0f}s", flush=True)
    with open(output_dir / "metrics.csv", newline="") as handle:
        return [{"step": int(r["step"]), "mean_return": float(r["mean_return"]),
                 "by_pair": json.loads(r["returns_by_body_task"])} for r in csv.DictReader(handle)]


def final_return(rows: list[dict]) -> float:
    tail = rows[-max(1, int(len(rows) * TAIL)):]
    values = [r["mean_return"] for r in tail if np.isfinite(r["mean_return"])]
    return float(np.mean(values)) if values else float("nan")


def final_by_body(rows: list[dict]) -> dict[str, float]:
    by_body: dict[str, list[float]] = {}
    for row in rows[-max(1, int(len(rows) * TAIL)):]:
        for pair, value in row["by_pair"].items():
            by_body.setdefault(BODIES[int(pair.split("/")[0])], []).append(value)
    return {body: float(np.mean(values)) for body, values in by_body.items()}


def steps_to(rows: list[dict], threshold: float, window: int = 3) -> int | None:
    """The first step at which the mean return of the last ``window`` updates reaches ``threshold``."""
    returns = [r["mean_return"] for r in rows]
    for i in range(len(rows)):
        recent = [v for v in returns[max(0, i - window + 1): i + 1] if np.isfinite(v)]
        if recent and np.mean(recent) >= threshold:
            return rows[i]["step"]
    return None


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
        ax.axhline(threshold, color="gray", linestyle="--", label="threshold (scratch's final return)")
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
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads (1 runs steadier on a machine whose other cores are busy)")
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
                                     "torch": torch.__version__, "python": platform.python_version(), "threads": args.threads},
                     "model": MODEL, "ppo": PPO, "budgets": {"pretrain_steps": pretrain, "transfer_steps": transfer}}

    print(f"pre-training on {len(TRAIN_BODIES)} bodies x {len(TRAIN_TASKS)} tasks, {pretrain} steps each model")
    curves = {"divmorph": run_recipe(work / "divmorph", *MODEL, *PPO, *episode, "--total_steps", str(pretrain)),
              "baseline": run_recipe(work / "baseline", *MODEL[:8], "--architecture", "baseline", *PPO, *episode,
                                     "--total_steps", str(pretrain))}
    stats = {name: RunningMeanStd.from_file(work / name / "model" / morphology_control.OBSERVATION_STATS)
             for name in curves}
    models = {name: DivMorphForContinuousControl.from_pretrained(work / name / "model").eval() for name in curves}
    # a held-out body's embedding row was never trained: give it the train bodies' mean, as add_body does
    with torch.no_grad():
        embedding = models["divmorph"].gate_network.body_embedding.weight
        train_rows = [BODIES.index(b) for b in TRAIN_BODIES]
        for body in HELD_OUT_BODIES:
            embedding[BODIES.index(body)] = embedding[train_rows].mean(0)
    eval_pairs = [(b, t) for b in TRAIN_BODIES + HELD_OUT_BODIES for t in TRAIN_TASKS]
    evaluation = {name: evaluate(controller_actions(models[name]), eval_pairs, stats[name], args.eval_episode_steps)
                  for name in curves}
    results["pretraining"] = {
        name: {"final_return": final_return(rows), "final_return_by_train_body": final_by_body(rows),
               "evaluation_by_body": {b: float(np.mean([evaluation[name][f"{b}/{t}"] for t in TRAIN_TASKS]))
                                      for b in TRAIN_BODIES + HELD_OUT_BODIES},
               "parameters": sum(p.numel() for p in models[name].parameters())}
        for name, rows in curves.items()}
    plot(curves, None, out.with_name("divmorph_pretraining.png"), "pre-training, train bodies x train tasks")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))

    print(f"transfer to {HELD_OUT_TASKS} on the train bodies, {transfer} steps each mode")
    held_out = ["--tasks", "held_out", *episode, "--total_steps", str(transfer)]
    model_dir = str(work / "divmorph" / "model")
    transfer_curves = {
        "tailors": run_recipe(work / "transfer-tailors", "--model", model_dir, "--transfer", "tailors", *PPO, *held_out),
        "full": run_recipe(work / "transfer-full", "--model", model_dir, "--transfer", "full", *PPO, *held_out),
        "scratch": run_recipe(work / "transfer-scratch", *MODEL, *PPO, *held_out),
    }
    threshold = final_return(transfer_curves["scratch"])
    steps = {name: steps_to(rows, threshold) for name, rows in transfer_curves.items()}
    results["transfer"] = {
        "task": HELD_OUT_TASKS[0], "threshold": threshold,
        "threshold_rule": "the from-scratch run's mean return over its last 20% of updates",
        "steps_to_threshold": steps,
        "final_return": {name: final_return(rows) for name, rows in transfer_curves.items()},
        "full_over_tailors_steps": (steps["full"] / steps["tailors"]) if steps["full"] and steps["tailors"] else None,
        "curves": {name: [(r["step"], r["mean_return"]) for r in rows] for name, rows in transfer_curves.items()},
    }
    plot(transfer_curves, threshold, out.with_name("divmorph_transfer.png"), f"transfer to {HELD_OUT_TASKS[0]}")
    out.write_text(json.dumps(results, indent=2))

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
