"""The convergence step-time benchmark times the benchmark's own step in both precisions in one run,
and convergence.py warns when bf16 is asked on a CPU without bf16 instructions."""

import json

import pytest

import convergence
import convergence_step_time


def test_both_precisions_their_ratio_and_the_run_estimate(tmp_path):
    out = tmp_path / "step_time.json"
    report = convergence_step_time.main(["--targets", "shrink 3L/192/3H", "--steps", "2", "--run-steps", "10",
                                         "--out", str(out)])
    row = report["rows"][0]
    assert row["target"] == "shrink 3L/192/3H"
    for precision in ("fp32", "bf16"):
        timing = row[precision]
        assert len(timing["steps"]) == 2 and all(seconds > 0 for seconds in timing["steps"])
        assert timing["run_hours"] == pytest.approx(timing["seconds_per_step"] * 10 / 3600)
    assert row["bf16_over_fp32"] == pytest.approx(row["bf16"]["seconds_per_step"] / row["fp32"]["seconds_per_step"])
    stored = json.loads(out.read_text())
    assert stored["command"].startswith("python benchmarks/convergence_step_time.py --targets")
    assert stored["environment"]["cpu_bf16_flags"] == convergence.cpu_bf16_flags()
    assert stored["environment"]["cpu_capability"] and stored["environment"]["cpu"] and stored["environment"]["transformers"]


def test_bf16_on_a_cpu_without_bf16_instructions_is_warned(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(convergence, "cpu_bf16_flags", lambda: [])
    monkeypatch.setattr(convergence, "run", lambda *args, **kwargs: (_ for _ in ()).throw(RuntimeError("stop")))
    with pytest.raises(RuntimeError, match="stop"):
        convergence.main(["--quick", "--precision", "bf16", "--device", "cpu", "--out", str(tmp_path)])
    assert "no bf16 instructions" in capsys.readouterr().err
    monkeypatch.setattr(convergence, "cpu_bf16_flags", lambda: ["avx512_bf16"])
    with pytest.raises(RuntimeError, match="stop"):
        convergence.main(["--quick", "--precision", "bf16", "--device", "cpu", "--out", str(tmp_path)])
    assert "no bf16 instructions" not in capsys.readouterr().err


@pytest.mark.parametrize("text, flags, model", [
    ("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 avx512_bf16\nvmx flags\t: bf16\n",
     ["avx512_bf16"], "Some CPU"),
    ("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\nCPU implementer\t: 0x41\n", ["bf16"], None),
])
def test_cpu_fields_read_from_cpuinfo(tmp_path, monkeypatch, text, flags, model):
    """x86 lists its instructions under ``flags`` (a ``vmx flags`` line is not it), Arm under ``Features``."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text)
    real_path = convergence.Path
    monkeypatch.setattr(convergence, "Path", lambda name: cpuinfo if name == "/proc/cpuinfo" else real_path(name))
    assert convergence.cpu_bf16_flags() == flags
    assert convergence.cpuinfo_field("model name") == model
    assert convergence_step_time.cpu_model() == (model or convergence_step_time.platform.machine())
