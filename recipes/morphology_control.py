"""Train one controller for many robot bodies and tasks with PPO (DivMorph, or the dense baseline),
and transfer it to a new task.

    # DivMorph on every train body x train task of the morphology suite (36 pairs)
    python recipes/morphology_control.py --output_dir out/divmorph --total_steps 1000000
    # the same Transformer without factor units and gates (MetaMorph-style baseline)
    python recipes/morphology_control.py --architecture baseline --output_dir out/baseline
    # transfer to the held-out task: only the task tailors train (learngenes and body tailors frozen) ...
    python recipes/morphology_control.py --model out/divmorph/model --tasks held_out --transfer tailors \\
        --output_dir out/transfer-tailors
    # ... against fine-tuning the whole controller, and against a controller trained from scratch
    python recipes/morphology_control.py --model out/divmorph/model --tasks held_out --transfer full ...
    python recipes/morphology_control.py --tasks held_out --output_dir out/scratch
    # a controller for a new body set from a saved DivMorph learngene
    python recipes/morphology_control.py --learngene out/divmorph/learngene --bodies held_out --output_dir out/new

Environments are stepped on the CPU; the policy runs on accelerate's device (a GPU when there is
one), in float32 (the controllers are small; mixed precision is refused rather than ignored). The
run writes ``metrics.csv`` (one row per PPO update: returns per body/task, losses), TensorBoard
logs with ``--report_to tensorboard``, resumable checkpoints under ``checkpoints/step-N``
(``--resume_from_checkpoint latest`` continues exactly, on the same device kind), and at the end
``model/`` (the controller, with ``observation_stats.safetensors``: the token normalisation its
inputs need, kept frozen when it is transferred), ``learngene/`` (DivMorph's shared units) and
``results.json``. ``--checkpointing_steps`` and ``--stop_after_steps`` count PPO updates.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from training_loop import (  # noqa: E402
    add_run_arguments,
    check_run_arguments,
    latest_checkpoint,
    start_run,
    write_text_atomically,
)

from hf_learngene import DivMorphConfig, DivMorphForContinuousControl  # noqa: E402
from hf_learngene.cli_types import (  # noqa: E402
    ArgType,
    existing_folder,
    fraction,
    fractions,
    non_negative_number,
    number,
    positive_integer,
    positive_number,
    requires,
    state_ranges,
)
from hf_learngene.modeling.divmorph.configuration_divmorph import GATE_TYPES  # noqa: E402
from hf_learngene.morphology import (  # noqa: E402
    BODY_SPLIT,
    MAX_LIMBS,
    NUM_BODIES,
    NUM_TASKS,
    TASK_SPLIT,
    TOKEN_DIM,
    TRAIN_BODIES,
    TRAIN_TASKS,
    SuiteSplit,
    make_env,
)
from hf_learngene.morphology.ppo import PPOConfig, PPOTrainer  # noqa: E402
from hf_learngene.saving import write_folder_atomically  # noqa: E402

OBSERVATION_STATS = "observation_stats.safetensors"  # beside the controller: how its inputs are normalised
CHECKPOINT_FILE = "trainer_state.safetensors"  # what a PPO checkpoint folder holds
NEW_CONTROLLER_OPTIONS = ["--hidden_size", "--num_layers", "--num_heads", "--intermediate_size", "--unit_split",
                          "--gate", "--gate_density", "--sparsity_weight", "--architecture"]


def suite_names(split: SuiteSplit) -> ArgType:
    """A split name (train, held_out, all) or a comma list of names of the suite."""
    return ArgType(f"train, held_out, all, or a comma list of the suite's {split.kind} names", split.select)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    suite = parser.add_argument_group("bodies and tasks (the morphology suite)")
    suite.add_argument("--bodies", type=suite_names(BODY_SPLIT), default=TRAIN_BODIES,
                       help="the bodies trained (default: train)")
    suite.add_argument("--tasks", type=suite_names(TASK_SPLIT), default=TRAIN_TASKS,
                       help="the tasks trained (default: train)")
    suite.add_argument("--envs_per_pair", type=positive_integer, default=1, help="environments per (body, task) pair")
    suite.add_argument("--max_episode_steps", type=positive_integer, default=1000)
    model = parser.add_argument_group("model")
    source = model.add_mutually_exclusive_group()
    source.add_argument("--model", type=existing_folder("config.json", "saved controller folder"),
                        help="a saved controller to continue from (e.g. to transfer it)")
    source.add_argument("--learngene", type=existing_folder("learngene_config.json", "DivMorph learngene folder"),
                        help="a DivMorph learngene: a controller with its shared units")
    model.add_argument("--transfer", choices=("tailors", "full"),
                       help="with --model: train only the task tailors (learngenes and body tailors frozen), or all")
    model.add_argument("--architecture", choices=("divmorph", "baseline"), default="divmorph",
                       help="a new controller: DivMorph's factor units and gates, or the same dense Transformer")
    model.add_argument("--hidden_size", type=positive_integer, default=128)
    model.add_argument("--num_layers", type=positive_integer, default=3)
    model.add_argument("--num_heads", type=positive_integer, default=2)
    model.add_argument("--intermediate_size", type=positive_integer, default=256)
    model.add_argument("--unit_split", type=fractions(("learngene", "morphology", "task")),
                       help="the units' shares (default 0.5,0.25,0.25)")
    model.add_argument("--gate", choices=GATE_TYPES, default="sigmoid",
                       help="sigmoid (soft, the paper's), straight_through (hard 0/1 from a threshold) or top_k (each "
                            "agent opens a fixed share of every linear's tailor units)")
    model.add_argument("--gate_density", type=fraction, default=0.1,
                       help="with --gate top_k: the share of each linear's tailor units open per agent")
    model.add_argument("--sparsity_weight", type=non_negative_number, default=1e-3, help="L1 pressure on tailor gates")
    ppo = parser.add_argument_group("PPO")
    ppo.add_argument("--total_steps", type=positive_integer, default=1_000_000, help="environment steps in all")
    ppo.add_argument("--rollout_steps", type=positive_integer, default=128, help="steps per environment per update")
    ppo.add_argument("--ppo_epochs", type=positive_integer, default=4)
    ppo.add_argument("--minibatch_size", type=positive_integer, default=512)
    ppo.add_argument("--learning_rate", type=positive_number, default=3e-4)
    ppo.add_argument("--gamma", type=number(0, 1), default=0.99)
    ppo.add_argument("--gae_lambda", type=number(0, 1), default=0.95)
    ppo.add_argument("--clip_range", type=number(0, 1, low_open=True, high_open=True), default=0.2)
    ppo.add_argument("--entropy_coef", type=non_negative_number, default=0.0)
    ppo.add_argument("--target_kl", type=positive_number,
                     help="stop an update's epochs early past this KL (default: never)")
    run = parser.add_argument_group("run (--checkpointing_steps and --stop_after_steps count PPO updates)")
    add_run_arguments(run, checkpoint_marker=CHECKPOINT_FILE, checkpoint_zero="only at the end and at --stop_after_steps")
    state_ranges(parser)
    args = parser.parse_args(argv)
    requires(parser, args, ["--transfer"], bool(args.model), "with --model (the controller to transfer)")
    if args.model and not args.transfer:
        parser.error("--model needs --transfer tailors or --transfer full")
    if args.mixed_precision != "no":
        parser.error("--mixed_precision: PPO here runs in float32 (the controllers are small); use 'no'")
    requires(parser, args, NEW_CONTROLLER_OPTIONS, not (args.model or args.learngene),
             "for a new controller (--model and --learngene bring their own)")
    requires(parser, args, ["--gate_density"], args.gate == "top_k", f"with --gate top_k, not --gate {args.gate}")
    if args.hidden_size % args.num_heads:
        parser.error(f"--num_heads {args.num_heads} must divide --hidden_size {args.hidden_size}")
    saved = json.loads((Path(args.model) / "config.json").read_text()) if args.model else {}
    if args.transfer == "tailors" and not saved.get("factorized", True):
        parser.error("--transfer tailors needs a DivMorph controller; this --model is the dense baseline, which "
                     "has no tailors (use --transfer full)")
    if args.model and observation_stats_of(Path(args.model)) is None:
        parser.error(f"--model {args.model} holds no {OBSERVATION_STATS} (and is not a checkpoint's model/ folder): "
                     "the token normalisation the controller was trained with, which it needs to act as it learned; "
                     "give the model/ folder of a run of this recipe, or a checkpoints/step-N/model folder")
    if not (args.model or args.learngene):
        try:  # the options are checked above; DivMorphConfig checks again for Python callers
            args.controller_config = new_controller_config(args)
        except ValueError as error:
            parser.error(f"the controller options are inconsistent: {error}")
    try:  # every value is checked by its type above; PPOConfig checks again for Python callers
        args.ppo = PPOConfig(total_steps=args.total_steps, rollout_steps=args.rollout_steps, epochs=args.ppo_epochs,
                             minibatch_size=args.minibatch_size, learning_rate=args.learning_rate, gamma=args.gamma,
                             gae_lambda=args.gae_lambda, clip_range=args.clip_range, entropy_coef=args.entropy_coef,
                             target_kl=args.target_kl, seed=args.seed, checkpoint_every=args.checkpointing_steps)
    except ValueError as error:
        parser.error(str(error))
    check_run_arguments(parser, args)
    return args


def final_mean_return(rows: list[dict]) -> float | None:
    """The mean over (body, task) pairs of each pair's mean return in ``rows`` (log rows): a pair whose
    episodes are long finishes few and appears in few rows, and weighs the same as any other."""
    by_pair: dict[str, list[float]] = {}
    for row in rows:
        for pair, value in json.loads(row["returns_by_body_task"]).items():
            by_pair.setdefault(pair, []).append(value)
    return float(np.mean([np.mean(values) for values in by_pair.values()])) if by_pair else None


def observation_stats_of(model: Path) -> Path | None:
    """The token statistics a saved controller was trained with: beside its weights (the run's ``model/``), or
    in the trainer state of the checkpoint whose ``model/`` it is."""
    for path in (model / OBSERVATION_STATS, model.parent / CHECKPOINT_FILE):
        if path.is_file():
            return path
    return None


def new_controller_config(args) -> DivMorphConfig:
    return DivMorphConfig(token_dim=TOKEN_DIM, max_limbs=MAX_LIMBS, num_bodies=NUM_BODIES, num_tasks=NUM_TASKS,
                          hidden_size=args.hidden_size, num_layers=args.num_layers, num_heads=args.num_heads,
                          intermediate_size=args.intermediate_size, factorized=args.architecture == "divmorph",
                          unit_split=args.unit_split, gate=args.gate, gate_density=args.gate_density,
                          sparsity_weight=args.sparsity_weight if args.architecture == "divmorph" else 0.0)


def make_controller(args) -> DivMorphForContinuousControl:
    """The controller a run trains. Its config records the bodies and tasks it has trained on
    (``trained_bodies``, ``trained_tasks``: those before, and this run's), so that its checkpoints and
    final model say so."""
    if args.model:
        controller = DivMorphForContinuousControl.from_pretrained(args.model)
        # a body or task this controller never trained on starts from the mean of the trained ones' embedding
        # rows (the gates of the average agent), not from its random row; a folder saved before this record was
        # kept was trained on the suite's train split
        for kind, split, chosen in (("body", BODY_SPLIT, args.bodies), ("task", TASK_SPLIT, args.tasks)):
            trained = getattr(controller.config, f"trained_{split.plural}", None) or list(split.train)
            new = [split.index(name) for name in chosen if name not in trained]
            if new:
                controller.init_unseen(kind, new, [split.index(name) for name in trained])
            setattr(controller.config, f"trained_{split.plural}", sorted(set(trained) | set(chosen)))
        if args.transfer == "tailors":
            controller.freeze_for_task_transfer()
        return controller
    if args.learngene:
        controller = DivMorphForContinuousControl.from_learngene(args.learngene, NUM_BODIES, NUM_TASKS)
    else:
        controller = DivMorphForContinuousControl(args.controller_config)
    controller.config.trained_bodies, controller.config.trained_tasks = sorted(args.bodies), sorted(args.tasks)
    return controller


def main(argv=None) -> dict:
    args = parse_args(argv)
    accelerator = start_run(args)
    if accelerator.num_processes > 1:
        raise SystemExit("PPO here runs in one process (its environments are stepped on this CPU); launch it "
                         "without several processes")
    output_dir = Path(args.output_dir)
    controller = make_controller(args)
    pairs = [(body, task) for body in args.bodies for task in args.tasks]
    env_fns = [lambda b=b, t=t: make_env(b, t, max_episode_steps=args.max_episode_steps)
               for b, t in pairs for _ in range(args.envs_per_pair)]
    # a controller trained before keeps the input statistics it learned with (frozen)
    stats = observation_stats_of(Path(args.model)) if args.model else None
    trainer = PPOTrainer(controller, env_fns, args.ppo, output_dir, device=accelerator.device,
                         show_progress=not args.no_progress_bar, tensorboard=args.report_to == "tensorboard",
                         observation_stats=stats)
    if args.resume_from_checkpoint:
        # parse_args made sure there is a checkpoint to resume from
        checkpoint = (latest_checkpoint(output_dir) if args.resume_from_checkpoint == "latest"
                      else Path(args.resume_from_checkpoint))
        trainer.load_checkpoint(checkpoint)
    stop = None
    if args.stop_after_steps:
        stop = trainer.steps + args.stop_after_steps * args.rollout_steps * len(env_fns)
    history = trainer.train(until_step=stop)
    if trainer.steps < args.total_steps:  # stopped early on purpose: leave a checkpoint to continue from
        trainer.save_checkpoint()
        return {"steps": trainer.steps, "stopped_early": True}
    def write_model(folder: Path) -> None:
        controller.save_pretrained(folder)
        trainer.save_observation_stats(folder / OBSERVATION_STATS)

    write_folder_atomically(output_dir / "model", write_model)
    if controller.config.factorized:
        controller.save_learngene(output_dir / "learngene")
    final = final_mean_return(history[-10:])
    results = {
        "command": "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])]),
        "steps": trainer.steps,
        "bodies": list(args.bodies),
        "tasks": list(args.tasks),
        "architecture": "divmorph" if controller.config.factorized else "baseline",
        "transfer": args.transfer,
        "trainable_parameters": sum(p.numel() for p in controller.parameters() if p.requires_grad),
        "parameters": sum(p.numel() for p in controller.parameters()),
        "final_mean_return": final,
    }
    write_text_atomically(output_dir / "results.json", json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
