"""Bad input fails with a message naming the value and what is accepted, and writes nothing."""

import os

import pytest

from nasnet_keras import cli
from nasnet_keras.training import RunDirectory, train
from training_helpers import snapshot

TINY = {"num_blocks": 1, "filters": 4}


def test_a_dataset_without_the_recipes_splits(tmp_path):
    directory = tmp_path / "run"
    with pytest.raises(ValueError) as error:
        train(model="cifar_6@768", dataset="imagenet2012", directory=str(directory), architecture=TINY)
    message = str(error.value)
    assert "'cifar' recipe evaluates on split 'test'" in message and "imagenet2012" in message
    assert "Splits: train, validation" in message and "--set eval_split=SPLIT" in message
    with pytest.raises(ValueError, match=r"'imagenet' recipe evaluates on split 'validation'.*Splits: train, test"):
        train(model="mobile", dataset="fashion_mnist", directory=str(directory))
    with pytest.raises(ValueError, match=r"trains on split 'train\[:0\]'.*is empty"):
        train(model="cifar_6@768", dataset="fashion_mnist", directory=str(directory), architecture=TINY,
              recipe_overrides={"train_split": "train[:0]"})
    assert not directory.exists()


def test_missing_imagenet_data_is_reported_before_anything_is_built_or_written(tmp_path):
    directory = tmp_path / "run"
    with pytest.raises(ValueError) as error:
        train(model="mobile", dataset="imagenet2012", directory=str(directory), data_dir=str(tmp_path / "tfds"),
              manual_dir=str(tmp_path / "manual"))
    assert "Dataset 'imagenet2012' (split 'train') could not be loaded" in str(error.value)
    assert "ILSVRC2012_img_train.tar" in str(error.value)
    assert not directory.exists()


@pytest.mark.parametrize(
    "model, size, expected",
    [
        ("mobile", 16, r"Cannot build variant 'mobile' \(genotype NASNet-A \[\w+\]\) for 16x16x1 images.*at least 32"),
        ("cifar_6@768", 4, r"Cannot build variant 'cifar_6@768' .* for 4x4x1 images.*at least 8x8"),
    ],
)
def test_an_image_size_the_model_cannot_take(tmp_path, model, size, expected):
    directory = tmp_path / "run"
    with pytest.raises(ValueError, match=expected):
        train(model=model, dataset="fashion_mnist", directory=str(directory), image_size=size, recipe="cifar")
    assert not directory.exists()


def test_a_checkpoint_from_another_architecture_is_refused_and_kept(tmp_path):
    run = RunDirectory(tmp_path / "run")
    other = {
        "model": {"variant": "cifar_7@2304", "genotype_id": "0123456789", "genotype_name": "found", "overrides": {}},
        "data": {"dataset": "fashion_mnist", "input_shape": [28, 28, 1], "num_classes": 10,
                 "train_split": "train", "eval_split": "test"},
        "recipe": {"name": "cifar"},
        "mixed_precision": False,
        "init_weights": None,
    }
    run.start(other)
    os.makedirs(run.file("checkpoints"), exist_ok=True)
    with open(run.file("checkpoints/ckpt-000000100.weights.h5"), "wb") as f:
        f.write(b"another run's weights")
    before = snapshot(run.path)
    with pytest.raises(ValueError) as error:
        train(model="cifar_6@768", dataset="fashion_mnist", directory=run.path, architecture=TINY)
    message = str(error.value)
    assert "variant 'cifar_7@2304' (genotype found [0123456789])" in message
    assert "variant 'cifar_6@768' (genotype NASNet-A [" in message and "Nothing was changed" in message
    assert snapshot(run.path) == before


def test_unknown_names_and_weights_files(tmp_path):
    directory = str(tmp_path / "run")
    with pytest.raises(ValueError, match=r"--model 'nasnet_z' is neither a named variant \(mobile, .*\) nor a"):
        train(model="nasnet_z", dataset="fashion_mnist", directory=directory)
    with pytest.raises(ValueError, match=r"Unknown dataset 'cifar11'. Known datasets: cifar10, cifar100"):
        train(model="cifar_6@768", dataset="cifar11", directory=directory)
    with pytest.raises(ValueError, match="Unknown recipe 'sgd'. Named recipes: cifar, imagenet, imagenet_large"):
        train(model="cifar_6@768", dataset="fashion_mnist", directory=directory, recipe="sgd")
    with pytest.raises(ValueError, match="`filters` sizes the CIFAR skeleton; variant 'mobile' is an ImageNet model"):
        train(model="mobile", dataset="fashion_mnist", directory=directory, architecture={"filters": 8})
    weights = tmp_path / "model.weights.h5"
    weights.write_bytes(b"")
    with pytest.raises(ValueError, match=r"a Keras .weights.h5 file stores no architecture.*Accepted: 'imagenet'"):
        train(model="cifar_6@768", dataset="fashion_mnist", directory=directory, weights=str(weights))
    assert not os.path.exists(directory)


def test_the_command_line_prints_errors_cleanly(tmp_path, capsys):
    code = cli.main(["train", "--model", "cifar_6@768", "--dataset", "imagenet2012", "--directory",
                     str(tmp_path / "run"), "--num-blocks", "1", "--filters", "4"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("nasnet train: error: The 'cifar' recipe evaluates on split 'test'")
    assert "Traceback" not in err
    code = cli.main(["train", "--model", "cifar_6@768", "--dataset", "fashion_mnist", "--directory",
                     str(tmp_path / "run"), "--set", "epochs=many"])
    assert code == 2 and "Recipe field epochs='many': expected a int" in capsys.readouterr().err
