"""`nasnet train` maps its flags onto TrainConfig one to one."""

from nasnet_keras import cli
from nasnet_keras.training.cli import config_from_args


def test_train_flags_map_onto_the_config():
    args = cli.build_parser().parse_args([
        "train", "--model", "found.json", "--base-variant", "cifar_7@2304", "--dataset", "cifar10",
        "--directory", "runs/x", "--recipe", "cifar", "--set", "epochs=20", "--set", "cutout_size=0",
        "--num-blocks", "2", "--filters", "16", "--image-size", "40", "--weights", "imagenet",
        "--mixed-precision", "--strategy", "multi-worker", "--sync-batch-norm", "--collective-timeout", "60",
        "--tpu", "my-tpu", "--jit-compile", "off", "--overwrite", "--save-every-steps", "500",
        "--eval-every-epochs", "5", "--seed", "3", "--verbose", "2", "--no-tensorboard", "--data-dir", "/data",
    ])
    config = config_from_args(args)
    assert args.func.__module__ == "nasnet_keras.training.cli"
    assert (config.model, config.base_variant, config.dataset, config.directory) == (
        "found.json", "cifar_7@2304", "cifar10", "runs/x")
    assert config.recipe == "cifar" and config.recipe_overrides == {"epochs": 20, "cutout_size": 0}
    assert config.architecture == {"num_blocks": 2, "filters": 16, "penultimate_filters": None}
    assert (config.image_size, config.weights) == (40, "imagenet")
    assert config.mixed_precision and config.strategy == "multi-worker" and not config.multi_gpu
    assert config.sync_batch_norm and (config.collective_timeout, config.tpu) == (60.0, "my-tpu")
    assert (config.jit_compile, config.overwrite, config.save_every_steps, config.eval_every_epochs) == (
        False, True, 500, 5)
    assert (config.seed, config.verbose, config.tensorboard, config.data_dir) == (3, 2, False, "/data")
    defaults = config_from_args(cli.build_parser().parse_args(
        ["train", "--model", "mobile", "--dataset", "imagenet2012", "--directory", "d"]))
    assert (defaults.recipe, defaults.jit_compile, defaults.verbose) == (None, "auto", "auto")
    assert defaults.tensorboard and not defaults.overwrite
    assert (defaults.strategy, defaults.sync_batch_norm, defaults.collective_timeout) == ("auto", False, 1800.0)
    deprecated = config_from_args(cli.build_parser().parse_args(
        ["train", "--model", "mobile", "--dataset", "imagenet2012", "--directory", "d", "--multi-gpu"]))
    assert deprecated.multi_gpu  # kept as an alias: the trainer reads it as strategy="mirrored"
    no_timeout = config_from_args(cli.build_parser().parse_args(
        ["train", "--model", "mobile", "--dataset", "imagenet2012", "--directory", "d", "--collective-timeout", "0"]))
    assert no_timeout.collective_timeout is None


def test_multi_gpu_is_a_deprecated_alias_of_mirrored():
    import pytest

    from nasnet_keras.training.trainer import TrainConfig, _strategy_name

    with pytest.warns(DeprecationWarning, match="use strategy='mirrored'"):
        assert _strategy_name(TrainConfig(multi_gpu=True)) == "mirrored"
    assert _strategy_name(TrainConfig(strategy="tpu")) == "tpu"
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="contradicts --strategy tpu"):
        _strategy_name(TrainConfig(multi_gpu=True, strategy="tpu"))
