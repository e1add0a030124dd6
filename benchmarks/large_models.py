"""Billion-parameter paths on a small machine: streaming a 7B build to disk, and lazy extraction.

Rows (``--rows`` picks a subset), each measured in a fresh subprocess with the kernel's peak-RSS
counter reset through ``/proc/self/clear_refs`` just before (rise = VmHWM - VmRSS before; a
sampler thread also records the highest RssAnon/RssFile seen, every 20 ms, to say where a peak
comes from; see ``build_speed.measure_window``):

* ``extract``: a random-init ``tinyllama-1.1b``-shaped Llama (vocab 32000, untied head, bf16 as
  the real checkpoint is stored; seed fixed) saved with ``save_pretrained(max_shard_size="1GB")``,
  then ``Learngene.extract(folder, method=..., save_directory=..., max_shard_size="1GB")`` for BoT
  and FRONT. Peak rise against the largest stacked role in float32 (the MLP roles:
  layers × intermediate × hidden × 4 bytes); goal ≤ 2×.
* ``stream``: ``build_pretrained`` of the ``llama-2-7b`` preset in bf16 (``max_shard_size="2GB"``)
  from the BoT (and FRONT) learngene of a random-init ``smollm-360m``-shaped Llama (vocab 49152,
  tied, as ``build_speed.py`` makes it); the window includes loading the learngene with
  ``Learngene.from_pretrained(folder, low_cpu_mem_usage=True)``. Goal: peak rise ≤ 3 GB. Then, in
  another fresh subprocess, plain ``transformers.AutoModelForCausalLM.from_pretrained(folder,
  dtype=torch.bfloat16)`` and one forward pass (with labels) on a few random tokens: loss and
  logits finite, seconds. The folder (~13.5 GB) is deleted afterwards.

Usage::

    python benchmarks/large_models.py [--rows extract,stream] [--stream-methods bot,front]
        [--threads 2] [--workdir /tmp] [--out benchmarks/results/large_models.json]

The JSON is rewritten after every measurement (``"complete": false`` until the run ends).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
import transformers

sys.path.insert(0, str(Path(__file__).parent))
import hf_learngene  # noqa: E402
from build_speed import (  # noqa: E402
    MIB,
    busy_cpu_s,
    child_setup,
    environment,
    finish,
    folder_bytes,
    make_llama_source,
    measure_window,
    own_cpu_s,
    run_child,
    status_kib,
)
from hf_learngene import Learngene  # noqa: E402
from hf_learngene.architectures.llama import LLAMA  # noqa: E402

GB = 10**9


def child(spec: dict) -> None:
    child_setup()
    what = spec["what"]
    if what == "extract":
        fn = lambda: Learngene.extract(spec["source"], method=spec["method"], save_directory=spec["out"],  # noqa: E731
                                       max_shard_size=spec["max_shard_size"], show_progress=False)
        _, measured = measure_window(fn)
    elif what == "build_pretrained":
        def fn():
            learngene = Learngene.from_pretrained(spec["learngene"], low_cpu_mem_usage=True)
            return learngene.build_pretrained(spec["out"], spec["size"], hf_learngene.AutoModelForCausalLM,
                                              dtype=torch.bfloat16, max_shard_size=spec["max_shard_size"],
                                              show_progress=False)
        _, measured = measure_window(fn)
    elif what == "load_forward":
        model, measured = measure_window(
            lambda: transformers.AutoModelForCausalLM.from_pretrained(spec["folder"], dtype=torch.bfloat16))
        tokens = torch.randint(0, model.config.vocab_size, (1, spec["tokens"]), generator=torch.Generator().manual_seed(0))
        start = time.perf_counter()
        with torch.no_grad():
            output = model(input_ids=tokens, labels=tokens)
        measured.update({
            "class": type(model).__name__,
            "params": sum(p.numel() for p in model.parameters()),
            "dtypes": sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters()}),
            "tokens": spec["tokens"],
            "forward_s": time.perf_counter() - start,
            # the load maps the shards lazily: the forward pass is what reads every weight
            "load_and_forward_rise": status_kib("VmHWM")["VmHWM"] * 1024 - measured["rss_before"],
            "loss": output.loss.item(),
            "loss_finite": bool(torch.isfinite(output.loss).item()),
            "logits_finite": bool(torch.isfinite(output.logits).all().item()),
            "logits_std": output.logits.float().std().item(),
        })
    else:
        raise ValueError(what)
    print(json.dumps(measured))


def guarded_child(spec: dict) -> dict:
    """run_child, with the CPU seconds other processes used meanwhile (~0 on a quiet machine)."""
    machine, own = busy_cpu_s(), own_cpu_s()
    measured = run_child(__file__, spec)
    measured["other_processes_cpu_s"] = round((busy_cpu_s() - machine) - (own_cpu_s() - own), 1)
    return measured


def largest_role_fp32(preset: str) -> int:
    p = LLAMA.presets[preset]
    return p["layers"] * p["intermediate"] * p["hidden"] * 4


def extract_rows(workdir: Path, args, results: dict, save) -> None:
    source = workdir / f"source_{args.extract_source}"
    results["extract_source"] = make_llama_source(source, args.extract_source, 32000, False, torch.bfloat16, "1GB")
    reference = largest_role_fp32(args.extract_source)
    print(f"extraction: random-init {args.extract_source}-shaped Llama, {results['extract_source']['params']:,} "
          f"parameters, bf16, {results['extract_source']['bytes_on_disk'] / MIB:.0f} MiB in 1GB shards; largest "
          f"stacked role in fp32 {reference / MIB:.0f} MiB", flush=True)
    results["rows"]["extract"] = []
    for method in ("bot", "front"):
        out = workdir / f"extracted_{method}"
        measured = guarded_child({"what": "extract", "source": str(source), "method": method, "out": str(out),
                                        "max_shard_size": "1GB"})
        row = {"method": method, "peak_rise_bytes": measured["rise"], "seconds": measured["seconds"],
               "largest_stacked_role_fp32_bytes": reference, "memory_ratio": measured["rise"] / reference,
               "learngene_bytes": folder_bytes(out), "detail": measured}
        results["rows"]["extract"].append(row)
        save()
        print(f"  {method:5s} extract {row['seconds']:.1f}s | peak rise {row['peak_rise_bytes'] / MIB:.0f} MiB "
              f"(anon {measured['anon_rise_sampled'] / MIB:.0f}, file-backed {measured['file_rise_sampled'] / MIB:.0f}) "
              f"vs largest role {reference / MIB:.0f} MiB -> ratio {row['memory_ratio']:.2f} (goal ≤ 2) | other processes' "
              f"CPU {measured['other_processes_cpu_s']:.0f}s", flush=True)
        shutil.rmtree(out)
    shutil.rmtree(source)


def stream_rows(workdir: Path, args, results: dict, save) -> None:
    source = workdir / f"source_{args.stream_source}"
    results["stream_source"] = make_llama_source(source, args.stream_source, 49152, True, torch.float32, "500MB")
    print(f"streaming: {args.stream_target} in bf16 from the learngene of a random-init {args.stream_source}-shaped "
          f"Llama ({results['stream_source']['params']:,} parameters, vocab 49152, tied)", flush=True)
    results["rows"]["stream"] = []
    for method in args.stream_methods.split(","):
        learngene_dir = workdir / f"learngene_{method}"
        learngene = Learngene.extract(source, method=method, save_directory=learngene_dir, show_progress=False)
        estimate = learngene.build_estimate(args.stream_target, hf_learngene.AutoModelForCausalLM,
                                            dtype=torch.bfloat16)
        del learngene
        out = workdir / f"built_{method}"
        row = {"method": method, "target": args.stream_target, "dtype": "bfloat16", "max_shard_size": "2GB",
               "learngene_bytes": folder_bytes(learngene_dir), "estimate": estimate}
        built = guarded_child({"what": "build_pretrained", "learngene": str(learngene_dir), "out": str(out),
                                     "size": args.stream_target, "max_shard_size": "2GB"})
        row.update({"build_peak_rise_bytes": built["rise"], "build_s": built["seconds"], "build_detail": built,
                    "folder_bytes": folder_bytes(out), "goal_bytes": 3 * GB})
        results["rows"]["stream"].append(row)
        save()
        print(f"  {method:5s} build_pretrained {row['build_s']:.0f}s, {row['folder_bytes'] / GB:.2f} GB on disk | peak "
              f"rise {built['rise'] / GB:.2f} GB (anon {built['anon_rise_sampled'] / GB:.2f}, file-backed "
              f"{built['file_rise_sampled'] / GB:.2f}; build_estimate said {estimate['peak_build_pretrained_bytes'] / GB:.2f}) "
              f"(goal ≤ 3 GB)", flush=True)
        loaded = guarded_child({"what": "load_forward", "folder": str(out), "tokens": args.tokens})
        row.update({"load_s": loaded["seconds"], "load_peak_rise_bytes": loaded["rise"],
                    "load_and_forward_peak_rise_bytes": loaded["load_and_forward_rise"], "forward": loaded})
        save()
        print(f"        transformers from_pretrained {loaded['seconds']:.1f}s ({loaded['class']}, "
              f"{loaded['params']:,} params, {loaded['dtypes']}; the shards are mapped lazily), forward on "
              f"{loaded['tokens']} tokens {loaded['forward_s']:.1f}s (reads every weight: load+forward rise "
              f"{loaded['load_and_forward_rise'] / GB:.2f} GB): loss {loaded['loss']:.3f} finite={loaded['loss_finite']}, "
              f"logits finite={loaded['logits_finite']} | other processes' CPU {built['other_processes_cpu_s']:.0f}s "
              f"during the build, {loaded['other_processes_cpu_s']:.0f}s during the load", flush=True)
        shutil.rmtree(out)
        shutil.rmtree(learngene_dir)
        gc.collect()
    shutil.rmtree(source)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="extract,stream", help="comma-separated: extract, stream")
    parser.add_argument("--stream-methods", default="bot,front")
    parser.add_argument("--stream-source", default="smollm-360m")
    parser.add_argument("--stream-target", default="llama-2-7b")
    parser.add_argument("--extract-source", default="tinyllama-1.1b")
    parser.add_argument("--tokens", type=int, default=8, help="tokens of the forward pass after loading")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp", help="where sources, learngenes and built models go (deleted after)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "large_models.json"))
    args = parser.parse_args()
    rows = set(args.rows.split(","))
    torch.set_num_threads(args.threads)
    os.environ["BENCH_THREADS"] = str(args.threads)
    results = {"command": " ".join(["python", "benchmarks/large_models.py", *sys.argv[1:]]),
               "environment": environment(args.threads),
               "goals": {"extract": "peak rise ≤ 2 × largest stacked role in fp32",
                         "stream": "peak rise ≤ 3 GB (learngene load included)"},
               "complete": False, "rows": {}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save = lambda: out.write_text(json.dumps(results, indent=2) + "\n")  # noqa: E731
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="large_models_") as tmp:
        if "extract" in rows:
            extract_rows(Path(tmp), args, results, save)
        if "stream" in rows:
            stream_rows(Path(tmp), args, results, save)
    finish(results, save, started, args.threads, out)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
    else:
        main()
