"""``hf-learngene extract / build / inspect`` end to end on the real MiniLM."""

import json
import shutil
import subprocess
import sys

import transformers

from hf_learngene.cli import main, parse_size


def test_extract_build_inspect(minilm_dir, tmp_path, capsys):
    assert main(["extract", str(minilm_dir), "--method", "bot", "--out", str(tmp_path / "lg")]) == 0
    assert "saved bot learngene" in capsys.readouterr().out
    assert main(["inspect", str(tmp_path / "lg"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["method"] == "bot" and info["source_sizes"]["layers"] == 6 and info["compression"] == 1.0
    assert main(["build", str(tmp_path / "lg"), "--size", "layers=3,hidden=192,heads=3",
                 "--task", "sequence-classification", "--num-labels", "3", "--out", str(tmp_path / "model")]) == 0
    model = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "model")
    assert (model.config.num_hidden_layers, model.config.hidden_size, model.config.num_labels) == (3, 192, 3)
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "model")
    assert model(**tokenizer("great", return_tensors="pt")).logits.shape == (1, 3)


def test_compact_extract_and_human_inspect(minilm_dir, tmp_path, capsys):
    assert main(["extract", str(minilm_dir), "--method", "front", "--keep", "0.5", "--out", str(tmp_path)]) == 0
    assert main(["inspect", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "method     : front (keep=0.5)" in out and "compression: " in out


def test_errors_exit_2_with_a_message(minilm_dir, tmp_path, capsys):
    assert main(["inspect", str(tmp_path)]) == 2
    assert "config.json is missing" in capsys.readouterr().err
    shutil.copytree(minilm_dir, tmp_path / "model")
    assert main(["extract", str(tmp_path / "model"), "--method", "front", "--keep", "2", "--out", str(tmp_path / "x")]) == 2
    assert "ratio in (0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_parse_size():
    assert parse_size("mini") == "mini"
    assert parse_size("layers=3, hidden=192,heads=3") == {"layers": 3, "hidden": 192, "heads": 3}
    assert parse_size('{"num_hidden_layers": 2}') == {"num_hidden_layers": 2}


def test_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "hf_learngene.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "extract" in result.stdout
