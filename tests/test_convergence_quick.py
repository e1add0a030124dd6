"""The convergence benchmark's --quick mode: at equal steps, FRONT and BoT end below random init
on held-out masked-LM loss, for one shrink and one grow target; and the same seed gives the same curves."""

import pytest

import convergence


@pytest.mark.slow
def test_front_and_bot_beat_random_at_equal_steps(tmp_path):
    report = convergence.main(["--quick", "--out", str(tmp_path)])
    assert {"shrink 4L/256/4H", "grow 8L/512/8H"} == set(report["results"])
    for target_name, result in report["results"].items():
        rows = {row["method"]: row for row in result["rows"]}
        print(target_name, {m: round(r["final_loss"], 3) for m, r in rows.items()})
        for method in ("front", "bot"):
            assert rows[method]["final_loss"] < rows["random"]["final_loss"], (target_name, method)
    assert (tmp_path / "convergence_quick.png").stat().st_size > 10_000
    assert "| shrink 4L/256/4H | front |" in (tmp_path / "convergence_quick.md").read_text()


def test_same_seed_same_curves(tmp_path):
    arguments = ["--quick", "--steps", "4", "--targets", "shrink 3L/192/3H", "--methods", "bot", "--no-plot"]
    first = convergence.main(arguments + ["--out", str(tmp_path / "a")])
    second = convergence.main(arguments + ["--out", str(tmp_path / "b")])
    curves = lambda report: [row["curve"] for row in report["results"]["shrink 3L/192/3H"]["rows"]]
    assert curves(first) == curves(second)
