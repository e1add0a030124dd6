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


@pytest.mark.parametrize("rank", [2, 40])
def test_svd_storage_counts_the_tensors_a_per_layer_svd_keeps(dense, rank):
    """The count equals the numel of what a per-layer SVD learngene would save: U, σ, V truncated at
    ``rank`` (capped by the matrix) for each factorized weight, every other tensor whole."""
    weights = fine_matched_cost.factorized_weights(dense)
    assert len(weights) == 4 * 7  # q, k, v, out, MLP in, MLP out and adaLN of each of the 4 blocks
    saved = {}
    for name, tensor in dense.state_dict().items():
        if name in weights:
            u, s, vh = torch.linalg.svd(tensor, full_matrices=False)
            saved |= {f"{name}.U": u[:, :rank], f"{name}.S": s[:rank], f"{name}.Vh": vh[:rank]}
        else:
            saved[name] = tensor
    assert fine_matched_cost.svd_stored_values(dense, rank) == sum(t.numel() for t in saved.values())


def test_matched_svd_rank_is_the_largest_that_fits(dense):
    learngene = FINELearngene.extract(FINEDiTTransformer2DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=1, out_channels=1, num_layers=4, sample_size=28,
        patch_size=4, num_embeds_ada_norm=10, rank=16))
    budget = fine_matched_cost.stored_values(learngene)
    rank = fine_matched_cost.svd_rank_for(dense, budget)
    assert fine_matched_cost.svd_stored_values(dense, rank) <= budget < fine_matched_cost.svd_stored_values(dense, rank + 1)
    assert 1 <= rank < 16  # the dense twin stores every block: it fits a lower rank than FINE's shared one
    with pytest.raises(SystemExit, match="rank-1"):
        fine_matched_cost.svd_rank_for(dense, budget=1000)


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
    # every lever changes the run: same seed and batches, so an unchanged start would repeat the base row
    base_loss = rows[base]["heldout_denoising_loss"]
    for row in report["rows"]:
        if row["fine"] and row["name"] != base:
            assert row["heldout_denoising_loss"] != base_loss, row["name"]
    assert rows["random, seed 1"]["heldout_denoising_loss"] != rows["random"]["heldout_denoising_loss"]
    # FINE's stored values and ranks are those of the learngenes it trained
    for rank in settings.ranks:
        learngene = FINELearngene.from_pretrained(Path(report["sources"][f"fine-r{rank}"]["folder"]) / "learngene")
        assert {factors.rank for factors in learngene.factors.values()} == {rank}
        assert rows[f"fine r{rank}"]["stored_values"] == sum(p.numel() for p in learngene.parameters())
        assert report["fine_factor_values"][rank] < rows[f"fine r{rank}"]["stored_values"]
    assert report["command"].startswith("python benchmarks/fine_matched_cost.py --quick")
