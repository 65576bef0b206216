"""`nasnet search` (tuner.cli) through `nasnet_keras.cli.main`: a real run and clean errors.

(Named test_search_cli.py, not test_cli.py: tests/training/test_cli.py exists and pytest's default
import mode needs unique test-module basenames across the tree.)
"""

import json
import os
import re

import pytest

from nasnet_keras import cli
from nasnet_keras.genotype import Genotype

pytestmark = pytest.mark.skipif(
    not os.path.exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"),
    reason="Fashion-MNIST IDX files missing: apt-get install dataset-fashion-mnist (make data)",
)

TINY = ["--epochs", "1", "--filters", "4", "--num-cells", "1", "--num-blocks", "2", "--subset", "128",
        "--validation-size", "64", "--image-size", "16", "--batch-size", "64", "--run-eagerly", "yes", "--verbose", "0"]
GIVEN = Genotype.from_blocks(
    normal=[(0, 1, "sep_conv_3x3", "identity"), (2, 0, "avg_pool_3x3", "conv_1x1")],
    reduction=[(0, 1, "max_pool_3x3", "sep_conv_5x5"), (2, 1, "identity", "conv_1x3_3x1")],
)


def test_search_command_end_to_end(tmp_path, capsys):
    given = tmp_path / "given.json"
    GIVEN.save(str(given))
    directory = tmp_path / "runs"
    code = cli.main(["search", "--dataset", "fashion_mnist", "--strategy", "random", "--max-trials", "2", *TINY,
                     "--directory", str(directory), "--top-k", "1", "--final-epochs", "1", "--genotype", str(given)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Trial 0/2 | genotype " in out and "Trial 1/2 | genotype " in out and "val_accuracy" in out
    project = directory / "random"
    for name in ("best_genotype.json", "best_cells.png", "final_genotype.json", "final_cells.png", "retrain.json"):
        assert (project / name).exists(), name
        assert f"{project / name}" in out or name == "retrain.json"
    assert (directory / "search_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Genotype.load(str(project / "best_genotype.json")).num_blocks == 2
    retrained = json.loads((project / "retrain.json").read_text())["results"]
    assert len(retrained) == 2 and all(r["status"] == "COMPLETED" for r in retrained)
    sources = sorted(r["source"] for r in retrained)
    assert sources[0] == "given.json" and sources[1].startswith("trial ")  # --genotype file + the top-1 trial
    assert GIVEN.id in {r["genotype_id"] for r in retrained}
    assert "Final genotype " in out


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--strategy", "bayesian"], "`--strategy` must be one of 'ppo', 'random', 'evolution'. Received: --strategy='bayesian'"),
        (["--strategy", "ppo", "--population-size", "5"], "configure evolution"),
        (["--dataset", "imagenet21k"], "Unknown dataset 'imagenet21k'. Known datasets: cifar10"),
        (["--genotype", "{missing}"], "no such file"),
        (["--genotype", "{invalid}"], "invalid genotype JSON"),
        (["--max-trials", "-1"], "`--max-trials` must be an integer >= 0. Received: --max-trials=-1"),
        (["--strategy", "random", "--controller-batch", "5"], "configure ppo and mean nothing for strategy"),
        (["--dataset", "cifar10", "--data-dir", "{empty}", "--no-download"], "Routes tried:"),
    ],
)
def test_bad_input_is_a_clean_error(tmp_path, capsys, arguments, message):
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"normal": {"blocks": [{"inputs": [0, 5], "ops": ["identity", "identity"]}]},
                                   "reduction": {"blocks": []}}))
    (tmp_path / "empty").mkdir()
    paths = {"missing": str(tmp_path / "missing.json"), "invalid": str(invalid), "empty": str(tmp_path / "empty")}
    arguments = [a.format(**paths) for a in arguments]
    directory = tmp_path / "runs"
    code = cli.main(["search", "--dataset", "fashion_mnist", *TINY, *arguments, "--directory", str(directory)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("nasnet search: error: ") and message in err
    assert "Traceback" not in err
    assert not directory.exists()  # nothing is written before the inputs are known to be good
    if message == "invalid genotype JSON":
        assert str(invalid) in err and "(a hidden-state index" in err  # file and fault named


def test_unavailable_dataset_error_says_how_to_get_it(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = cli.main(["search", "--dataset", "fashion_mnist", "--data-dir", str(tmp_path / "empty"), "--no-download",
                     "--directory", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "apt-get install dataset-fashion-mnist" in err and "local IDX files in" in err


def test_search_and_demo_are_registered(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["search", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--strategy", "--preset", "--population-size", "--sample-size", "--max-trials", "--epochs", "--filters", "--directory", "--overwrite", "--top-k",
                 "--final-epochs", "--subset", "--validation-size", "--batch-size", "--image-size", "--genotype"):
        assert flag in out
    with pytest.raises(SystemExit):
        cli.main(["demo", "--help"])
    assert "--directory" in capsys.readouterr().out


def test_child_defaults_are_the_recipe_s_and_help_shows_them(capsys):
    from tuner.children import ChildConfig

    recipe = ChildConfig()
    args = cli.build_parser().parse_args(["search"])
    for name in ("epochs", "filters", "num_cells", "batch_size", "learning_rate", "weight_decay"):
        assert getattr(args, name) == getattr(recipe, name), name
    with pytest.raises(SystemExit):
        cli.main(["search", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for flag, value in (("--epochs", recipe.epochs), ("--learning-rate", recipe.learning_rate),
                        ("--weight-decay", recipe.weight_decay), ("--batch-size", recipe.batch_size)):
        # the option's own help (up to the next option) ends with its default
        assert re.search(rf"{flag} [A-Z_]+ (?:(?!--).)*default {re.escape(str(value))}\)", help_text), flag
