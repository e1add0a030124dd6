"""The convergence benchmark's --quick mode: at equal steps, FRONT and BoT end below random init
on held-out masked-LM loss, for one shrink and one grow target; the same seed gives the same curves;
and the new options (corpus, lr sweep, thresholds, plateau, downstream recipe) run end to end."""

import json
from pathlib import Path

import pytest

import convergence


@pytest.mark.slow
def test_front_and_bot_beat_random_at_equal_steps(tmp_path):
    report = convergence.main(["--quick", "--out", str(tmp_path)])
    assert {"shrink 4L/256/4H", "grow 8L/512/8H"} == set(report["results"])
    for target_name, result in report["results"].items():
        rows = {row["method"]: row for row in result["rows"]}
        print(target_name, {m: round(r["final_loss"], 3) for m, r in rows.items()})
        for method in ("front (keep 1)", "bot (split, units)"):
            assert rows[method]["final_loss"] < rows["random"]["final_loss"], (target_name, method)
    assert (tmp_path / "convergence_quick.png").stat().st_size > 10_000
    assert "| shrink 4L/256/4H | front (keep 1) |" in (tmp_path / "convergence_quick.md").read_text()


def test_same_seed_same_curves(tmp_path):
    arguments = ["--quick", "--steps", "4", "--targets", "shrink 3L/192/3H", "--methods", "bot", "--no-plot",
                 "--threads", "1"]
    first = convergence.main(arguments + ["--out", str(tmp_path / "a")])
    second = convergence.main(arguments + ["--out", str(tmp_path / "b")])
    curves = lambda report: [row["curve"] for row in report["results"]["shrink 3L/192/3H"]["rows"]]
    assert curves(first) == curves(second)


def test_rotten_tomatoes_sweep_thresholds_plateau_and_downstream_recipe(tmp_path):
    """Random init is swept over two rates and the best is every method's; the report holds the sweep,
    the thresholds, the plateau and the recipe's accuracy; --merge of the report gives it back."""
    report = convergence.main(["--quick", "--corpus", "rotten_tomatoes", "--steps", "4", "--targets",
                               "shrink 3L/192/3H", "--methods", "bot", "--lr-sweep", "3e-4", "1e-3",
                               "--finetune-steps", "2", "--threads", "1", "--out", str(tmp_path)])
    stem = tmp_path / "convergence_quick_rotten_tomatoes"
    report = json.loads(json.dumps(report))  # as the JSON file holds it (lists, not tuples)
    assert json.loads(stem.with_suffix(".json").read_text()) == report
    assert report["settings"]["corpus"] == "rotten_tomatoes" and report["settings"]["lr"] is None
    assert report["settings"]["lr_sweep"] == [3e-4, 1e-3]
    assert report["command"].startswith("python benchmarks/convergence.py --quick --corpus rotten_tomatoes")
    result = report["results"]["shrink 3L/192/3H"]
    sweep = {run["lr"]: run["final_loss"] for run in result["lr_sweep"]}
    assert set(sweep) == {3e-4, 1e-3} and result["lr"] == min(sweep, key=sweep.get)
    rows = {row["method"]: row for row in result["rows"]}
    assert set(rows) == {"random", "bot (split, units)"}
    assert rows["random"]["curve"] == next(r["curve"] for r in result["lr_sweep"] if r["lr"] == result["lr"])
    assert [t["fraction"] for t in result["thresholds"]] == [0.25, 0.5, 1.0]
    for row in rows.values():
        assert [t["fraction"] for t in row["thresholds"]] == [0.25, 0.5, 1.0]
        assert 0.0 <= row["downstream_accuracy"] <= 1.0
    assert 0 < report["unigram_plateau"] < 10.33  # below uniform guessing over MiniLM's 30,522 tokens
    assert result["random_below_unigram_plateau"] == (rows["random"]["final_loss"] < report["unigram_plateau"])
    table = stem.with_suffix(".md").read_text()
    assert "| reach 25% | reach 50% | reach random's final |" in table and "rotten_tomatoes" in table
    assert "the same lr for every method: random init's best" in table
    assert stem.with_suffix(".png").stat().st_size > 10_000

    merged = convergence.main(["--merge", str(stem.with_suffix(".json")), "--quick", "--no-plot",
                               "--out", str(tmp_path / "merged")])
    merged = json.loads(json.dumps(merged))
    environment = merged["results"]["shrink 3L/192/3H"].pop("environment")  # each merged target records its own
    assert environment == report["environment"] and merged["environment"] == report["environment"]
    assert merged["results"] == json.loads(json.dumps(report["results"]))
    assert merged["unigram_plateau"] == report["unigram_plateau"]
    assert merged["command"].split(" && ")[-1].startswith("python benchmarks/convergence.py --merge ")  # rebuilds it
    assert (tmp_path / "merged" / "convergence_quick_rotten_tomatoes.md").read_text() == table


def test_lr_skips_the_sweep(tmp_path):
    report = convergence.main(["--quick", "--steps", "2", "--targets", "shrink 3L/192/3H", "--methods", "random",
                               "--lr", "5e-4", "--no-plot", "--threads", "1", "--out", str(tmp_path)])
    result = report["results"]["shrink 3L/192/3H"]
    assert result["lr"] == 5e-4 and result["lr_sweep"] == [] and report["settings"]["lr_sweep"] == ()
    assert (tmp_path / "convergence_quick.json").exists()


def test_bf16_precision_runs_the_masked_lm_stage_and_the_recipe(tmp_path, monkeypatch):
    """``--precision bf16`` trains and evaluates under autocast, passes bf16 to the downstream recipe,
    says so in the table and writes files of its own (never over a float32 table)."""
    import text_classification

    precisions, recipe_arguments = [], []
    loss, recipe = convergence.masked_lm_loss, text_classification.main
    monkeypatch.setattr(convergence, "masked_lm_loss",
                        lambda model, batch, precision="fp32": precisions.append(precision) or loss(model, batch, precision))
    monkeypatch.setattr(text_classification, "main", lambda argv: recipe_arguments.extend(argv) or recipe(argv))
    report = convergence.main(["--quick", "--steps", "2", "--targets", "shrink 3L/192/3H", "--methods", "random",
                               "--lr", "5e-4", "--precision", "bf16", "--finetune-steps", "2", "--no-plot",
                               "--threads", "1", "--out", str(tmp_path)])
    assert report["settings"]["precision"] == "bf16"
    row = report["results"]["shrink 3L/192/3H"]["rows"][0]
    assert row["final_loss"] < row["curve"][0][1] and 0.0 <= row["downstream_accuracy"] <= 1.0
    assert precisions and set(precisions) == {"bf16"}  # every training step and every held-out batch
    assert recipe_arguments[recipe_arguments.index("--mixed_precision") + 1] == "bf16"
    assert "64 tokens, bf16 autocast in masked-LM training" in (tmp_path / "convergence_quick_bf16.md").read_text()
    assert not (tmp_path / "convergence_quick.json").exists()


@pytest.mark.parametrize("arguments, message", [
    (["--lr", "1e-3", "--lr-sweep", "1e-4"], "exclude each other"),
    (["--lr-sweep", "1e-4", "1e-4"], "twice"),
    (["--lr-sweep", "0"], "positive"),
    (["--lr", "-0.001"], "positive"),
    (["--finetune-steps", "-1"], "≥ 0"),
    (["--corpus", "sst2"], "invalid choice"),
    (["--precision", "fp16"], "invalid choice"),
])
def test_bad_flags_are_refused(arguments, message, tmp_path, capsys):
    with pytest.raises(SystemExit):
        convergence.main(["--quick", "--out", str(tmp_path), *arguments])
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("setting, values", [("steps", (2000, 3000)), ("precision", ("fp32", "bf16")),
                                             ("precision", (None, "bf16"))])
def test_merge_refuses_reports_of_other_budgets(setting, values, tmp_path):
    """One table needs one budget: reports whose settings differ (steps, precision) are not joined; a
    report written before ``precision`` existed (None here: no such key) ran in float32."""
    from dataclasses import asdict

    paths = []
    for value in values:
        settings = asdict(convergence.Settings(**({} if value is None else {setting: value})))
        if value is None:
            del settings[setting]
        report = {"command": "python benchmarks/convergence.py", "environment": {}, "unigram_plateau": 6.7,
                  "settings": settings, "results": {}}
        paths.append(tmp_path / f"r{value}.json")
        paths[-1].write_text(json.dumps(report))
    with pytest.raises(SystemExit, match=f"other settings.*{setting}"):
        convergence.main(["--merge", *map(str, paths), "--no-plot", "--out", str(tmp_path / "merged")])
    assert not (tmp_path / "merged" / "convergence.json").exists()


def test_merge_joins_the_rows_of_one_target_when_random_init_ran_the_same(tmp_path):
    """A run at a fixed --lr adds rows to the target of a report whose sweep chose that lr, when its
    random-init run is the same (one seed, one curve). Rows are joined under their full labels: a
    report from before ``bot_shrinks`` existed (BoT's low-pass, labelled by its scheme alone) has
    them rewritten from its own settings."""
    common = ["--quick", "--steps", "2", "--targets", "shrink 3L/192/3H", "--finetune-steps", "0", "--no-plot",
              "--threads", "1"]
    swept = convergence.main([*common, "--methods", "bot", "--bot-shrinks", "wavelet", "--lr-sweep", "3e-4",
                              "1e-3", "--out", str(tmp_path / "swept")])
    lr = swept["results"]["shrink 3L/192/3H"]["lr"]
    convergence.main([*common, "--methods", "bot", "--lr", f"{lr}", "--out", str(tmp_path / "fixed")])
    old = json.loads((tmp_path / "swept" / "convergence_quick.json").read_text())
    del old["settings"]["bot_shrinks"], old["settings"]["precision"]  # as reports before these settings were
    for row in old["results"]["shrink 3L/192/3H"]["rows"]:
        row["method"] = row["method"].replace("bot (split, wavelet)", "bot")
    (tmp_path / "old.json").write_text(json.dumps(old))
    merged = convergence.main(["--merge", str(tmp_path / "old.json"), str(tmp_path / "fixed" / "convergence_quick.json"),
                               "--quick", "--no-plot", "--out", str(tmp_path / "merged")])
    result = merged["results"]["shrink 3L/192/3H"]
    assert [row["method"] for row in result["rows"]] == ["random", "bot (split, wavelet)", "bot (split, units)"]
    assert result["lr_sweep"] and result["lr"] == lr
    assert merged["settings"]["bot_shrinks"] == ("wavelet", "units") and merged["settings"]["lr"] is None
    assert all(len(row["thresholds"]) == 3 for row in result["rows"])

    other = json.loads((tmp_path / "fixed" / "convergence_quick.json").read_text())
    other["results"]["shrink 3L/192/3H"]["rows"][0]["curve"][-1][1] += 0.1  # another random-init run
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="another random-init run"):
        convergence.main(["--merge", str(tmp_path / "old.json"), str(tmp_path / "other.json"), "--quick",
                          "--no-plot", "--out", str(tmp_path / "refused")])
    with pytest.raises(SystemExit, match=r"a row 'bot \(split, units\)' in two reports"):
        convergence.main(["--merge", str(tmp_path / "fixed" / "convergence_quick.json"),
                          str(tmp_path / "fixed" / "convergence_quick.json"), "--quick", "--no-plot",
                          "--out", str(tmp_path / "refused")])


def test_a_sweep_split_by_rate_and_method_merges_into_the_swept_table(tmp_path):
    """Random init alone at each rate, and a method alone (--no-random) at the best one, join into the
    table one swept run gives: the same sweep, the same chosen rate, the same curves and thresholds.
    A row trained at a losing rate, or a target with no random-init run at all, is refused."""
    common = ["--quick", "--steps", "3", "--eval-every", "1", "--targets", "shrink 3L/192/3H", "--finetune-steps", "0",
              "--no-plot", "--threads", "1"]
    whole = convergence.main([*common, "--methods", "bot", "--lr-sweep", "3e-4", "1e-3", "--out", str(tmp_path / "whole")])
    expected = json.loads(json.dumps(whole["results"]["shrink 3L/192/3H"]))  # as stored: tuples become lists
    best = expected["lr"]
    worst = next(run["lr"] for run in expected["lr_sweep"] if run["lr"] != best)
    paths = []
    for name, arguments in [("high", ["--methods", "random", "--lr", "1e-3"]),
                            ("low", ["--methods", "random", "--lr", "3e-4"]),
                            ("bot", ["--methods", "bot", "--no-random", "--lr", f"{best}"]),
                            ("bot_at_worst", ["--methods", "bot", "--no-random", "--lr", f"{worst}"])]:
        report = convergence.main([*common, *arguments, "--out", str(tmp_path / name)])
        paths.append(str(tmp_path / name / "convergence_quick.json"))
    rows = report["results"]["shrink 3L/192/3H"]["rows"]
    assert [row["method"] for row in rows] == ["bot (split, units)"] and "thresholds" not in rows[0]
    table = (tmp_path / "bot_at_worst" / "convergence_quick.md").read_text()
    assert f"| shrink 3L/192/3H | bot (split, units) | {worst:g} |" in table and "| – | – | – | – |" in table

    merged = convergence.main(["--merge", *paths[:3], "--quick", "--no-plot", "--out", str(tmp_path / "merged")])
    result = merged["results"]["shrink 3L/192/3H"]
    assert result["lr"] == best and [run["lr"] for run in result["lr_sweep"]] == [3e-4, 1e-3]
    assert [run["curve"] for run in result["lr_sweep"]] == [run["curve"] for run in expected["lr_sweep"]]
    assert merged["settings"]["lr"] is None and merged["settings"]["lr_sweep"] == (3e-4, 1e-3)
    strip = lambda rows: [{k: v for k, v in row.items() if k != "seconds"} for row in rows]
    assert strip(json.loads(json.dumps(result["rows"]))) == strip(expected["rows"])
    assert json.loads(json.dumps(result["thresholds"])) == expected["thresholds"]
    assert result["random_below_unigram_plateau"] == expected["random_below_unigram_plateau"]
    assert "| shrink 3L/192/3H | " in (tmp_path / "merged" / "convergence_quick.md").read_text()

    with pytest.raises(SystemExit, match=rf"trained at lr {worst:g}.*--lr {best:g}"):
        convergence.main(["--merge", *paths[:2], paths[3], "--quick", "--no-plot", "--out", str(tmp_path / "refused")])
    with pytest.raises(SystemExit, match="no report holds a random-init run"):
        convergence.main(["--merge", paths[2], "--quick", "--no-plot", "--out", str(tmp_path / "refused")])
    elsewhere = json.loads(Path(paths[2]).read_text())
    elsewhere["environment"]["cpu_bf16_flags"] = ["amx_bf16"] if not convergence.cpu_bf16_flags() else []
    (tmp_path / "elsewhere.json").write_text(json.dumps(elsewhere))
    with pytest.raises(SystemExit, match="another machine or software.*cpu_bf16_flags"):
        convergence.main(["--merge", *paths[:2], str(tmp_path / "elsewhere.json"), "--quick", "--no-plot",
                          "--out", str(tmp_path / "refused")])
    del elsewhere["environment"]["cpu_bf16_flags"], elsewhere["environment"]["cpu_capability"]  # as an older report
    (tmp_path / "older.json").write_text(json.dumps(elsewhere))
    with pytest.raises(SystemExit, match="cpu_capability not recorded vs"):  # compared with every report, not the first
        convergence.main(["--merge", paths[1], str(tmp_path / "older.json"), paths[0], "--quick", "--no-plot",
                          "--out", str(tmp_path / "refused")])
    other_target = json.loads((tmp_path / "whole" / "convergence_quick.json").read_text())  # swept, as the table
    other_target["results"] = {"shrink 4L/256/4H": other_target["results"].pop("shrink 3L/192/3H")}
    other_target["environment"] = {"device": "NVIDIA H200", "torch": "2.11.0+cu130"}  # another target: another machine is fine
    (tmp_path / "gpu.json").write_text(json.dumps(other_target))
    joined = convergence.main(["--merge", *paths[:3], str(tmp_path / "gpu.json"), "--quick", "--no-plot",
                               "--out", str(tmp_path / "joined")])
    assert joined["results"]["shrink 4L/256/4H"]["environment"]["device"] == "NVIDIA H200"
    assert joined["results"]["shrink 3L/192/3H"]["environment"] == json.loads(Path(paths[0]).read_text())["environment"]
    assert not (tmp_path / "refused").exists() or not list((tmp_path / "refused").iterdir())


def test_no_random_needs_a_fixed_rate_and_a_method(tmp_path, capsys):
    with pytest.raises(SystemExit):
        convergence.main(["--quick", "--no-random", "--methods", "bot", "--out", str(tmp_path)])
    assert "--no-random needs --lr" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        convergence.main(["--quick", "--no-random", "--lr", "1e-3", "--methods", "random", "--out", str(tmp_path)])
    assert "leaves no method" in capsys.readouterr().err


def test_a_diverged_rate_is_never_chosen(tmp_path):
    """A rate whose random-init run ended in NaN ranks after every finite one, whatever the order of
    the reports; when every rate diverged there is no baseline, and the merge says so."""
    common = ["--quick", "--steps", "2", "--targets", "shrink 3L/192/3H", "--finetune-steps", "0", "--no-plot",
              "--threads", "1", "--methods", "random"]
    paths = []
    for lr in ("3e-4", "1e-3"):
        convergence.main([*common, "--lr", lr, "--out", str(tmp_path / lr)])
        paths.append(tmp_path / lr / "convergence_quick.json")
    diverged = json.loads(paths[1].read_text())
    row = diverged["results"]["shrink 3L/192/3H"]["rows"][0]
    row["curve"][-1][1] = row["final_loss"] = float("nan")
    paths[1].write_text(json.dumps(diverged))
    for order in (paths, paths[::-1]):
        merged = convergence.main(["--merge", *map(str, order), "--quick", "--no-plot", "--out", str(tmp_path / "m")])
        assert merged["results"]["shrink 3L/192/3H"]["lr"] == 3e-4
    finite = json.loads(paths[0].read_text())
    row = finite["results"]["shrink 3L/192/3H"]["rows"][0]
    row["curve"][-1][1] = row["final_loss"] = float("nan")
    paths[0].write_text(json.dumps(finite))
    with pytest.raises(SystemExit, match="diverged at every rate"):
        convergence.main(["--merge", *map(str, paths), "--quick", "--no-plot", "--out", str(tmp_path / "m")])
    assert convergence.diverged_last(float("nan")) > convergence.diverged_last(1e9)
