"""Files written by the code before issue #8 (commit 4f12533) still load, with the same meaning.

tests/fixtures/old_format was written by that commit's code (its make_fixtures.py says how):
a tiny NASNetCIFAR `.keras` file with its predictions, genotype JSON files, the model card
of an export, a `retrain.json` and a PPO oracle's project after one PPO update.
"""

import json
import os
import shutil

import keras
import numpy as np
import pytest

from nasnet_keras.genotype import NASNET_A, Genotype
from savedmodels import read_model_card

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "old_format")


def fixture(name):
    return os.path.join(FIXTURES, name)


@pytest.fixture(scope="module")
def old_model():
    return keras.models.load_model(fixture("tiny_cifar.keras"))


def test_an_old_keras_file_loads_with_the_same_architecture_and_predictions(old_model, tmp_path):
    images = np.load(fixture("tiny_cifar_inputs.npy"))
    expected = np.load(fixture("tiny_cifar_predictions.npy"))
    np.testing.assert_allclose(old_model.predict(images, verbose=0), expected, atol=1e-6)
    cells = {layer.genotype for layer in old_model.layers if hasattr(layer, "genotype")}
    genotype = Genotype.load(fixture("genotype.json"))
    assert cells == {genotype.normal, genotype.reduction}
    # Re-saved by the current code, it keeps architecture and predictions.
    old_model.save(tmp_path / "again.keras")
    again = keras.models.load_model(tmp_path / "again.keras")
    np.testing.assert_allclose(again.predict(images, verbose=0), expected, atol=1e-6)


def test_old_genotype_files_load_to_the_same_genotypes(tmp_path):
    genotype = Genotype.load(fixture("genotype.json"))
    stored = json.load(open(fixture("genotype.json")))
    assert genotype.id == stored["id"] == "bb0f7a8f1a"
    assert genotype.name == "fixture" and genotype.normal.concat == (1, 3)
    assert Genotype.load(fixture("nasnet_a.json")) == NASNET_A
    # The current writer writes the same document (the one on-disk shape did not change).
    genotype.save(str(tmp_path / "again.json"))
    assert json.load(open(tmp_path / "again.json")) == stored


def test_an_old_model_card_reads_and_its_genotype_is_the_models(old_model, tmp_path):
    directory = tmp_path / "1"
    directory.mkdir()
    shutil.copyfile(fixture("model_card.json"), directory / "model_card.json")
    card = read_model_card(str(directory))
    assert card["class_names"] == ["a", "b", "c"] and card["classes"] == 3
    genotype = Genotype.from_dict(card["genotype"])
    assert genotype == Genotype.load(fixture("genotype.json"))
    assert card["params"] == old_model.count_params()


def test_an_old_retrain_file_reads_into_the_same_genotype():
    results = json.load(open(fixture("retrain.json")))["results"]
    genotype = Genotype.from_dict({**results[0]["genotype"], "name": "final (trial 3)"})
    assert genotype == Genotype.load(fixture("genotype.json")) and genotype.id == results[0]["genotype_id"]


def test_an_old_ppo_project_resumes(tmp_path):
    from tuner import keras_tuner_internals as internals
    from tuner.oracles import WEIGHTS_FILE, PPOOracle
    from tuner.space import SearchSpace

    shutil.copytree(fixture("ppo_project"), tmp_path / "ppo_project")
    expected = json.load(open(fixture("ppo_project/expected.json")))
    oracle = PPOOracle(SearchSpace(num_blocks=1), seed=3, batch_size=2, units=8, max_trials=10)
    internals.set_project_dir(oracle, str(tmp_path), "ppo_project")
    oracle.reload()
    assert oracle.ppo.num_updates == expected["num_updates"] == 1
    assert oracle.ppo.baseline == pytest.approx(expected["baseline"])
    with np.load(fixture(f"ppo_project/{WEIGHTS_FILE}")) as data:
        for i, weight in enumerate(oracle.controller.get_weights()):
            np.testing.assert_array_equal(weight, data[f"controller/{i}"])
        for i, slot in enumerate(oracle.ppo.optimizer.get_weights()):
            np.testing.assert_array_equal(slot, data[f"optimizer/{i}"])
