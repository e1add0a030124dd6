"""The function-similarity benchmark on MiniLM: at 8L/512/8H (hidden ×4/3, 12 heads of 32 → 8 of 64,
depth ×4/3) BoT's whole-unit split keeps more of the source's function than its former linear remainder."""

import function_similarity


def test_split_keeps_more_of_minilms_function_than_linear_at_8L_512_8H(tmp_path):
    report = function_similarity.main(["--reviews", "12", "--policies", "auto", "--targets", "grow 8L/512/8H",
                                       "--threads", "2", "--out", str(tmp_path)])
    score = {row["method"]: row["correlation"] for row in report["rows"]}
    assert {"bot", "bot (wavelet)", "bot (linear, wavelet)", "front", "random",
            "hypercloning+stack+weight_selection"} <= set(score)
    assert score["bot"] > score["bot (linear, wavelet)"] + 0.2
    assert score["bot"] == score["bot (wavelet)"]  # growing: the shrink scheme plays no part
    assert score["bot"] > score["random"] + 0.3
    assert (tmp_path / "function_similarity.md").exists()
