"""benchmarks/fine_matched_cost.py: the storage it matches is counted from the real tensors, the
truncated baselines fit FINE's budget as tightly as they can, and the quick run reports every start."""

import sys
from pathlib import Path

import pytest
import torch
from diffusers import DiTTransformer2DModel

from hf_learngene import Learngene
from hf_learngene.modeling.fine_dit import FINEDiTTransformer2DModel
from hf_learngene.modeling.fine_learngene import FINELearngene

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import fine_matched_cost  # noqa: E402


@pytest.fixture(scope="module")
def dense():
    torch.manual_seed(0)
    return DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=16, in_channels=1, out_channels=1,
                                 num_layers=4, sample_size=28, patch_size=4, num_embeds_ada_norm=10)


def test_svd_storage_counts_u_sigma_v_of_every_factorized_weight(dense):
    weights = fine_matched_cost.factorized_weights(dense)
    # q, k, v, out, MLP in, MLP out and the adaLN modulation of each of the 4 blocks
    assert len(weights) == 4 * 7
    total = fine_matched_cost.stored_values(dense)
    assert fine_matched_cost.svd_stored_values(dense, 2) == (
        total - sum(w.numel() for w in weights.values()) + sum(2 * (w.shape[0] + w.shape[1] + 1) for w in weights.values()))


def test_matched_svd_rank_is_the_largest_that_fits(dense):
    learngene = FINELearngene.extract(FINEDiTTransformer2DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=1, out_channels=1, num_layers=4, sample_size=28,
        patch_size=4, num_embeds_ada_norm=10, rank=16))
    budget = fine_matched_cost.stored_values(learngene)
    rank = fine_matched_cost.svd_rank_for(dense, budget)
    assert fine_matched_cost.svd_stored_values(dense, rank) <= budget < fine_matched_cost.svd_stored_values(dense, rank + 1)
    assert 1 <= rank < 16  # the dense twin stores every block: it fits a lower rank than FINE's shared one


def test_matched_front_keep_fits_the_budget_tightly(dense):
    budget = fine_matched_cost.stored_values(dense) // 3
    keep, values = fine_matched_cost.front_keep_for(dense, budget)
    assert values == Learngene.extract(dense, method="front", keep=keep, show_progress=False).summary()["stored_values"]
    assert values <= budget
    more = Learngene.extract(dense, method="front", keep=min(1.0, keep * 1.05), show_progress=False)
    assert more.summary()["stored_values"] > budget  # within 5% of the largest keep that fits


def test_quick_run_reports_every_start_at_its_storage(tmp_path):
    report = fine_matched_cost.main(["--quick", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")])
    rows = {row["name"]: row for row in report["rows"]}
    settings = fine_matched_cost.QUICK
    base = f"fine r{settings.ranks[0]}"
    assert {"random", base, f"fine r{settings.ranks[1]}", f"svd r{settings.ranks[0]}", "front keep 1"} <= set(rows)
    assert rows[base]["stored_vs_fine"] == 1.0 and rows["random"]["stored_values"] == 0
    matched = [row for row in report["rows"] if row["group"] == "dense, matched storage"]
    assert len(matched) == 2 and all(row["stored_vs_fine"] <= 1.0 for row in matched)
    assert rows["front keep 1"]["stored_vs_fine"] > 1.0  # the untruncated dense source stores more than FINE
    assert all(torch.isfinite(torch.tensor(row["fid"])) for row in report["rows"])
    assert set(report["sources"]) == {f"fine-r{r}" for r in settings.ranks} | {"dense"}
    assert (tmp_path / "out" / "fine_matched_cost_quick.png").is_file()
    assert report["command"].startswith("python benchmarks/fine_matched_cost.py --quick")
