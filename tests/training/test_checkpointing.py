"""Checkpoints restore the whole training state; a run directory is resumed only by the same run."""

import os

import keras
import numpy as np
import pytest

from nasnet_keras.training import CheckpointCallback, ImageNetRecipe, RunDirectory, compile_for_recipe
from nasnet_keras.training import averaged_weights as ema
from training_helpers import batch, snapshot, two_head_model


def compiled_model(seed: int, inputs: int = 6):
    keras.utils.set_random_seed(seed)
    model = two_head_model(inputs=inputs)
    compile_for_recipe(model, ImageNetRecipe(ema_momentum=0.5, base_learning_rate=0.1), 5, jit_compile=False)
    return model


def numpy(variables):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def manifest(variant="cifar_6@768", genotype_id="5bd5ee8c19", epochs=600):
    return {
        "model": {"variant": variant, "genotype_id": genotype_id, "genotype_name": "NASNet-A", "overrides": {}},
        "data": {"dataset": "fashion_mnist", "input_shape": [28, 28, 1], "num_classes": 10},
        "recipe": {"name": "cifar", "epochs": epochs},
        "mixed_precision": False,
        "init_weights": None,
    }


def test_checkpoint_restores_weights_and_the_whole_optimizer(tmp_path):
    model = compiled_model(0)
    x, y = batch(24)
    model.fit(x, {"predictions": y, "aux_predictions": y}, batch_size=8, epochs=1, verbose=0)
    run = RunDirectory(tmp_path)
    run.save(model, 3)
    fresh = compiled_model(1)
    assert run.restore(fresh) == 3
    for ours, theirs in zip(numpy(fresh.weights), numpy(model.weights)):
        np.testing.assert_array_equal(ours, theirs)
    names = [v.path.split("/")[-1] for v in model.optimizer.variables]
    assert [v.path.split("/")[-1] for v in fresh.optimizer.variables] == names
    assert any(n.endswith("_average") for n in names) and any(n.endswith("_velocity") for n in names)
    assert any(n.endswith("_momentum") for n in names) and "iteration" in names
    for ours, theirs in zip(numpy(fresh.optimizer.variables), numpy(model.optimizer.variables)):
        np.testing.assert_array_equal(ours, theirs)
    assert float(fresh.optimizer.learning_rate) == float(model.optimizer.learning_rate)
    # A finished run resumed with nothing left to train still evaluates the averages.
    assert ema.use_averaged_weights(fresh)
    for weight, average in zip(numpy(fresh.trainable_variables), numpy(ema.averaged_variables(fresh))):
        np.testing.assert_array_equal(weight, average)


def test_checkpoints_are_written_atomically_and_rotated(tmp_path):
    run = RunDirectory(tmp_path)
    model = compiled_model(0)
    os.makedirs(run.file("checkpoints"))
    # What a writer killed during a save leaves behind (fileio's partial name, a dead PID).
    with open(run.file("checkpoints/.ckpt-000000007.weights.h5.partial-999999999-0abc.weights.h5"), "wb") as f:
        f.write(b"half a file")
    for step in (1, 2, 3):
        run.save(model, step, keep=2)
    assert sorted(os.listdir(run.file("checkpoints"))) == ["ckpt-000000002.weights.h5", "ckpt-000000003.weights.h5"]
    assert run.latest_checkpoint()[0] == 3


def test_the_callback_saves_at_step_multiples_and_epoch_ends(tmp_path):
    run = RunDirectory(tmp_path)
    model = compiled_model(0)
    x, y = batch(40)
    model.fit(x, {"predictions": y, "aux_predictions": y}, batch_size=8, epochs=2, verbose=0,
              callbacks=[CheckpointCallback(run, every_steps=3, keep=10)])
    assert [step for step, _ in run.checkpoints()] == [3, 5, 6, 9, 10]
    assert [e["step"] for e in run.events() if e["event"] == "checkpoint"] == [3, 5, 6, 9, 10]
    with pytest.raises(ValueError, match="`every_steps` must be an integer >= 1 or None. Received: every_steps=0"):
        CheckpointCallback(run, every_steps=0)


def test_a_directory_is_resumed_only_by_the_same_run(tmp_path):
    run = RunDirectory(tmp_path / "run")
    assert run.check(manifest()) is False  # nothing there: a fresh run
    run.start(manifest())
    assert run.check(manifest()) is False  # same run, no checkpoint yet
    run.save(compiled_model(0), 5)
    assert run.check(manifest()) is True  # same run: resume
    before = snapshot(run.path)
    with pytest.raises(ValueError) as error:
        run.check(manifest(variant="mobile", genotype_id="0123456789"))
    message = str(error.value)
    for part in ("already holds another run", "variant 'cifar_6@768'", "[5bd5ee8c19]", "variant 'mobile'",
                 "[0123456789]", "model.variant: 'cifar_6@768' != 'mobile'", "Nothing was changed", "--overwrite"):
        assert part in message
    with pytest.raises(ValueError, match=r"recipe.epochs: 600 != 20"):
        run.check(manifest(epochs=20))
    assert snapshot(run.path) == before
    # --overwrite replaces this package's files and nothing else.
    with open(os.path.join(run.path, "notes.txt"), "w") as f:
        f.write("mine")
    assert run.check(manifest(variant="mobile"), overwrite=True) is False
    run.start(manifest(variant="mobile"), overwrite=True)
    assert sorted(os.listdir(run.path)) == ["checkpoints", "notes.txt", "run.json"]
    assert run.read_manifest()["model"]["variant"] == "mobile" and run.checkpoints() == []


def test_run_files_without_a_manifest_are_not_adopted(tmp_path):
    run = RunDirectory(tmp_path)
    run.save(compiled_model(0), 4)
    with pytest.raises(ValueError, match=r"holds training files \(checkpoints\) but no run.json.*Nothing was changed"):
        run.check(manifest())


@pytest.mark.filterwarnings("ignore:Skipping")  # Keras' own warnings while it tries the file
def test_a_checkpoint_of_another_architecture_is_refused(tmp_path):
    run = RunDirectory(tmp_path)
    run.save(compiled_model(0, inputs=6), 4)
    with pytest.raises(ValueError, match=r"Checkpoint .*ckpt-000000004.weights.h5 does not fit the model"):
        run.restore(compiled_model(0, inputs=5))


def test_a_checkpoint_whose_optimizer_state_does_not_load_is_refused(tmp_path):
    run = RunDirectory(tmp_path)
    model = compiled_model(0)
    x, y = batch(16)
    model.fit(x, {"predictions": y, "aux_predictions": y}, batch_size=8, epochs=1, verbose=0)
    run.save(model, 2)
    other = two_head_model()
    other.compile(optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy")  # other slots
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="at step 2 but its optimizer state did not load"):
        run.restore(other)
