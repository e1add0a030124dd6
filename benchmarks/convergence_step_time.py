"""How long does one step of the convergence benchmark take here, in float32 and under bf16 autocast?

The convergence table's grow targets take thousands of masked-LM steps per run, and a run must
finish inside one session; whether ``--precision bf16`` helps depends on the CPU (native bf16
instructions, ``avx512_bf16`` or ``amx_bf16``, or an emulation through float32). This times the
benchmark's own training step (:func:`convergence.masked_lm_loss`, backward, gradient clipping,
AdamW) on its own batches (the corpus, batch size and length of its budget) for a random-init
model of each target, one precision after the other in the same process, and reports the median
seconds per step of each, the bf16 / fp32 ratio measured in this run, and what one convergence run
of ``--run-steps`` steps would take at that rate (evaluations and the downstream check not
included). The CPU's bf16 flags are recorded with the numbers.

    python benchmarks/convergence_step_time.py                       # both grow targets, 1 thread
    python benchmarks/convergence_step_time.py --targets 'grow 8L/512/8H' --steps 5

Output: ``--out`` (default ``benchmarks/results/convergence_step_time.json``) with the command line.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import transformers

sys.path.insert(0, str(Path(__file__).parent))
import convergence  # noqa: E402


def cpu_model() -> str:
    """The CPU's model name as Linux lists it, else the machine type."""
    return convergence.cpuinfo_field("model name") or platform.machine()


def time_steps(model, data: convergence.MaskedReviews, settings: convergence.Settings, steps: int) -> list[float]:
    """Seconds of each of ``steps`` training steps, after one untimed warm-up step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
    model.train()
    seconds = []
    for step in range(steps + 1):
        start = time.perf_counter()
        convergence.masked_lm_loss(model, data.batch(step), settings.precision).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        if step:
            seconds.append(time.perf_counter() - start)
    return seconds


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", choices=list(convergence.TARGETS),
                        default=["grow 8L/512/8H", "grow 12L/768/12H"])
    parser.add_argument("--steps", type=convergence.count(1), default=3,
                        help="timed steps per target and precision (each step's time is stored)")
    parser.add_argument("--run-steps", type=convergence.count(1), default=2000,
                        help="the convergence run whose training time is estimated (default 2000, the CPU tables')")
    parser.add_argument("--batch", type=convergence.count(1), default=16)
    parser.add_argument("--max-length", type=convergence.count(8), default=64)
    parser.add_argument("--threads", type=convergence.count(1), default=1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "convergence_step_time.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = replace(convergence.Settings(), batch=args.batch, max_length=args.max_length, train_reviews=400,
                       heldout_reviews=16)
    tokenizer = transformers.AutoTokenizer.from_pretrained(convergence.minilm_path())
    data = convergence.MaskedReviews(tokenizer, settings)
    report = {"command": shlex.join(["python", "benchmarks/convergence_step_time.py",
                                     *(argv if argv is not None else sys.argv[1:])]),
              "environment": {**convergence.cpu_environment(), "cpu": cpu_model(),
                              "threads": args.threads, "torch": torch.__version__,
                              "transformers": transformers.__version__},
              "settings": {"batch": args.batch, "max_length": args.max_length, "timed_steps": args.steps,
                           "run_steps": args.run_steps},
              "rows": []}
    print(f"CPU bf16 flags: {', '.join(report['environment']['cpu_bf16_flags']) or 'none'}; "
          f"{args.threads} thread(s); batch {args.batch} × {args.max_length} tokens", flush=True)
    for name in args.targets:
        row = {"target": name}
        for precision in convergence.PRECISIONS:
            model, _, _ = convergence.build_model("random", convergence.TARGETS[name], settings)
            seconds = time_steps(model, data, replace(settings, precision=precision), args.steps)
            row[precision] = {"seconds_per_step": statistics.median(seconds), "steps": seconds,
                              "run_hours": statistics.median(seconds) * args.run_steps / 3600}
            print(f"[{name}] {precision}: {row[precision]['seconds_per_step']:.2f} s/step (median of {args.steps}); "
                  f"{args.run_steps} steps ≈ {row[precision]['run_hours']:.1f} h", flush=True)
            del model
        row["bf16_over_fp32"] = row["bf16"]["seconds_per_step"] / row["fp32"]["seconds_per_step"]
        print(f"[{name}] bf16 / fp32 time per step: {row['bf16_over_fp32']:.2f}", flush=True)
        report["rows"].append(row)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
