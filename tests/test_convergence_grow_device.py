"""benchmarks/convergence_grow_device.sh, the one prepared call for the grow targets on a GPU: which runs
it starts and how it joins them, checked with a stand-in for python that records its arguments (the
real runs are GPU-sized); every recorded run must parse with convergence.py's own parser."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import convergence  # noqa: E402

STAND_IN = """#!/usr/bin/env python3
import json, sys
from pathlib import Path
argv = sys.argv[2:]  # after benchmarks/convergence.py
with open(sys.argv[0] + ".calls", "a") as calls:
    calls.write(json.dumps(argv) + "\\n")
if "--merge" not in argv:
    if "FAIL" in " ".join(argv) and "rotten_tomatoes" in argv:
        sys.exit("a run failed")
    out = Path(argv[argv.index("--out") + 1])
    out.mkdir(parents=True, exist_ok=True)
    stem = "convergence" if argv[argv.index("--corpus") + 1] == "imdb" else "convergence_rotten_tomatoes"
    stem += "_bf16" if "bf16" in argv else ""
    (out / (stem + ".json")).write_text("{}")
"""


def run_script(tmp_path, *extra):
    stand_in = tmp_path / "python"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(0o755)
    result = subprocess.run(["bash", "benchmarks/convergence_grow_device.sh", str(tmp_path / "out"), *extra],
                            cwd=ROOT, env=os.environ | {"PYTHON": str(stand_in)}, capture_output=True, text=True)
    calls = [json.loads(line) for line in (tmp_path / "python.calls").read_text().splitlines()]
    return result, calls


def test_four_runs_on_the_gpu_then_one_merge_per_corpus(tmp_path):
    result, calls = run_script(tmp_path, "--steps", "1500")
    assert result.returncode == 0, result.stderr
    runs, merges = [c for c in calls if "--merge" not in c], [c for c in calls if "--merge" in c]
    parsed = [convergence.argument_parser().parse_args(argv) for argv in runs]
    assert sorted((a.corpus, tuple(a.targets)) for a in parsed) == [
        (corpus, (target,)) for corpus in ("imdb", "rotten_tomatoes") for target in ("grow 12L/768/12H", "grow 8L/512/8H")]
    for args in parsed:
        assert args.device == "cuda" and args.steps == 1500  # the extra arguments come last and win
        assert args.max_length == 64 and args.bot_schemes == ["split", "linear"]  # the shrink tables' budget
        assert {"random", "front", "bot", "hypercloning+stack", "hypercloning+stack+weight_selection"} == set(args.methods)
    assert len(merges) == 2
    for merge in merges:
        args = convergence.argument_parser().parse_args(merge)
        assert len(args.merge) == 2 and all(Path(path).is_file() for path in args.merge)
        assert args.out == str(tmp_path / "out")


def test_bf16_reports_are_found_and_joined(tmp_path):
    """Extra arguments may change the reports' names (``--precision bf16`` → ``…_bf16.json``); the joins follow."""
    result, calls = run_script(tmp_path, "--precision", "bf16")
    assert result.returncode == 0, result.stderr
    merges = [convergence.argument_parser().parse_args(c) for c in calls if "--merge" in c]
    assert len(merges) == 2
    for args in merges:
        assert len(args.merge) == 2 and all(path.endswith("_bf16.json") and Path(path).is_file() for path in args.merge)


def test_a_folder_with_reports_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "convergence.json").write_text("{}")
    result = subprocess.run(["bash", "benchmarks/convergence_grow_device.sh", str(tmp_path / "out")], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 2 and "already holds convergence reports" in result.stderr
    assert (tmp_path / "out" / "convergence.json").read_text() == "{}"


def test_a_failed_run_fails_the_call_and_names_its_log(tmp_path):
    result, calls = run_script(tmp_path, "--out-tag", "FAIL")
    assert result.returncode != 0
    assert "failed:" in result.stderr and "rotten_tomatoes-grow-8L_512_8H.log" in result.stderr
    assert not [c for c in calls if "--merge" in c]  # nothing joined from a partial set
