"""The shrink ablation's harness: every row undoes exactly the choice it names, and the report holds
its command, curves and table."""

import json

import torch

import shrink_ablation
from convergence import TARGETS

TARGET = TARGETS["shrink 4L/256/4H"]


def state(label: str) -> dict[str, torch.Tensor]:
    return shrink_ablation.build_variant(label, TARGET, shrink_ablation.QUICK).bert.state_dict()


def test_each_row_changes_what_it_names_and_only_while_it_runs():
    default = state("bot (units)")
    differs = lambda other, name: not torch.allclose(default[name], other[name])
    embeddings, query = "embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight"
    even = state("bot (units), hidden evenly spaced")
    assert differs(even, embeddings)
    apart = state("bot (units), heads kept apart")
    assert differs(apart, query) and not differs(apart, embeddings)  # the hidden units are the same ones
    scaled = state("bot (units), source_std")
    assert differs(scaled, query)
    for label in ("bot (wavelet)", "weight_selection"):
        assert differs(state(label), embeddings), label
    again = state("bot (units)")  # the patches are gone once their build is done
    assert all(torch.equal(default[name], again[name]) for name in default)


def test_quick_report(tmp_path):
    report = shrink_ablation.main(["--quick", "--targets", "shrink 3L/192/3H", "--variants", "bot (units)",
                                   "weight_selection", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "shrink_ablation_quick.json").read_text())
    assert saved["command"].startswith("python benchmarks/shrink_ablation.py --quick")
    rows = saved["results"]["shrink 3L/192/3H"]
    assert [row["variant"] for row in rows] == ["bot (units)", "weight_selection"]
    assert all(len(row["curve"]) == report["settings"]["steps"] + 1 for row in rows)
    table = (tmp_path / "shrink_ablation_quick.md").read_text()
    assert "| bot (units) |" in table and "| weight_selection |" in table
