"""The recipes carry the paper's / TF-slim's values and turn them into the right Keras objects."""

import math
import warnings

import keras
import numpy as np
import pytest

from nasnet_keras import variants
from nasnet_keras.training import recipes
from nasnet_keras.overrides import parse_overrides
from nasnet_keras.training.recipes import CifarRecipe, ImageNetRecipe, get_recipe


def lr_at(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_cifar_recipe_holds_the_paper_values():
    recipe = get_recipe("cifar")
    assert (recipe.epochs, recipe.batch_size, recipe.learning_rate) == (600, 32, 0.025)
    assert (recipe.momentum, recipe.aux_loss_weight, recipe.cutout_size, recipe.pad) == (0.9, 0.4, 16, 4)
    assert recipe.clip_global_norm == 5.0 and recipe.label_smoothing == 0.0 and recipe.ema_momentum is None
    assert (recipe.train_split, recipe.eval_split) == ("train", "test")
    # slim's total_training_steps = 937500 = 600 * 50000 / 32; full batches only here.
    assert recipe.total_steps(50_000) == 600 * 1562
    # Model-side regularisation comes from the variant table (TF-slim's cifar config).
    kwargs = recipe.model_overrides(variants.get("cifar_6@768").training_kwargs())
    assert kwargs["drop_path_keep_prob"] == 0.6 and kwargs["weight_decay"] == 5e-4
    assert kwargs["aux_head"] is True and kwargs["dropout"] == 0.0
    assert (kwargs["bn_momentum"], kwargs["bn_epsilon"]) == (0.9, 1e-5)
    optimizer = recipe.optimizer(steps_per_epoch=1562)
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert optimizer.momentum == 0.9 and not optimizer.nesterov and optimizer.global_clipnorm == 5.0
    assert not optimizer.use_ema


def test_imagenet_recipes_hold_the_paper_and_slim_values():
    mobile = get_recipe("imagenet")
    assert (mobile.label_smoothing, mobile.aux_loss_weight, mobile.ema_momentum) == (0.1, 0.4, 0.9999)
    assert (mobile.decay_rate, mobile.epochs_per_decay, mobile.clip_global_norm) == (0.97, 2.4, 10.0)
    assert mobile.learning_rate == 0.04 and mobile.eval_split == "validation"
    optimizer = mobile.optimizer(steps_per_epoch=100)
    assert isinstance(optimizer, keras.optimizers.RMSprop)
    assert (optimizer.rho, optimizer.epsilon, optimizer.momentum) == (0.9, 1.0, 0.9)
    assert optimizer.use_ema and optimizer.ema_momentum == 0.9999
    kwargs = mobile.model_overrides(variants.get("mobile").training_kwargs())
    assert (kwargs["dropout"], kwargs["weight_decay"], kwargs["drop_path_keep_prob"]) == (0.5, 4e-5, 1.0)
    large = get_recipe("imagenet_large")
    assert large.learning_rate == pytest.approx(0.03)  # 0.015 per 16 images, at batch 32
    kwargs = large.model_overrides(variants.get("large").training_kwargs())
    assert (kwargs["dropout"], kwargs["weight_decay"], kwargs["drop_path_keep_prob"]) == (0.5, 5e-5, 0.7)
    assert recipes.default_recipe_name("large", "imagenet") == "imagenet_large"
    assert recipes.default_recipe_name("cifar_7@2304", "cifar") == "cifar"
    assert recipes.default_recipe_name("7@1920", "imagenet") == "imagenet"


def test_recipe_fields_override_the_variant_regularisation():
    recipe = CifarRecipe(drop_path_keep_prob=0.8, weight_decay=0.0, aux_loss_weight=0.0)
    kwargs = recipe.model_overrides(variants.get("cifar_6@768").training_kwargs())
    assert (kwargs["drop_path_keep_prob"], kwargs["weight_decay"], kwargs["aux_head"]) == (0.8, 0.0, False)


def test_cosine_schedule_values_at_given_steps():
    recipe = CifarRecipe(epochs=10, batch_size=64)  # lr scales linearly: 0.025 * 64 / 32
    assert recipe.learning_rate == pytest.approx(0.05)
    steps_per_epoch = recipe.steps_per_epoch(1000)  # 15 full batches
    total = recipe.total_steps(1000)
    assert (steps_per_epoch, total) == (15, 150)
    schedule = recipe.learning_rate_schedule(steps_per_epoch)
    for step in (0, 1, 50, 75, 149, 150, 400):
        expected = 0.05 * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
        assert lr_at(schedule, step) == pytest.approx(expected, abs=1e-7), step
    assert lr_at(schedule, 75) == pytest.approx(0.025) and lr_at(schedule, 150) == pytest.approx(0.0, abs=1e-9)
    # The optimizer reads the schedule at its own iteration count (what a resume restores).
    optimizer = recipe.optimizer(steps_per_epoch)
    optimizer.iterations.assign(50)
    assert float(optimizer.learning_rate) == pytest.approx(0.05 * 0.5 * (1 + math.cos(math.pi / 3)))


def test_exponential_schedule_values_at_given_steps():
    recipe = ImageNetRecipe(batch_size=64)
    assert recipe.learning_rate == pytest.approx(0.08)
    schedule = recipe.learning_rate_schedule(steps_per_epoch=100)
    assert recipe.decay_steps(100) == 240  # 2.4 epochs
    assert lr_at(schedule, 0) == pytest.approx(0.08)
    assert lr_at(schedule, 239) == pytest.approx(0.08)  # staircase: constant within a period
    assert lr_at(schedule, 240) == pytest.approx(0.08 * 0.97)
    assert lr_at(schedule, 2400) == pytest.approx(0.08 * 0.97**10)
    smooth = ImageNetRecipe(staircase=False).learning_rate_schedule(100)
    assert lr_at(smooth, 120) == pytest.approx(0.04 * 0.97**0.5)


def test_losses_and_metrics_follow_the_outputs():
    loss, weights = get_recipe("imagenet").losses(["predictions", "aux_predictions"])
    assert weights == {"predictions": 1.0, "aux_predictions": 0.4}
    assert all(l.label_smoothing == 0.1 for l in loss.values())
    single, none = get_recipe("cifar").losses(["predictions"])
    assert none is None and single.label_smoothing == 0.0
    metrics = get_recipe("imagenet").metrics(["predictions", "aux_predictions"])
    assert list(metrics) == ["predictions"] and metrics["predictions"][1].name == "top5"
    with pytest.raises(ValueError, match="Unexpected model output 'logits'"):
        get_recipe("cifar").losses(["predictions", "logits"])


def test_overrides_are_typed_and_checked():
    recipe = get_recipe("cifar", **parse_overrides(["epochs=20", "batch-size=64", "ema_momentum=0.99"]))
    assert (recipe.epochs, recipe.batch_size, recipe.ema_momentum) == (20, 64, 0.99)
    assert get_recipe("imagenet", ema_momentum="none").ema_momentum is None
    assert get_recipe("imagenet", crop_area_range="0.1,1").crop_area_range == (0.1, 1.0)
    with pytest.raises(ValueError, match=r"Unknown field\(s\) \['cutout'\].*cutout_size"):
        get_recipe("cifar", cutout=8)
    with pytest.raises(ValueError, match="Unknown recipe 'cifar10'. Named recipes: cifar, imagenet"):
        get_recipe("cifar10")
    with pytest.raises(ValueError, match=r"epochs='ten': expected a int"):
        get_recipe("cifar", epochs="ten")
    with pytest.raises(ValueError, match="`epochs` must be an integer >= 1. Received: epochs=0"):
        get_recipe("cifar", epochs=0)
    with pytest.raises(ValueError, match=r"`drop_path_keep_prob` must be a finite number > 0 and <= 1 or None. Received: drop_path_keep_prob=1.5"):
        CifarRecipe(drop_path_keep_prob=1.5)
    with pytest.raises(ValueError, match="--set expects FIELD=VALUE"):
        parse_overrides(["epochs"])
    with pytest.raises(ValueError, match="fewer than one batch of batch_size=32"):
        CifarRecipe().steps_per_epoch(20)


def test_short_runs_warn_that_the_ema_keeps_the_initial_weights():
    with pytest.warns(UserWarning, match=r"ema_momentum=0.9999 averages over the last ~10000 steps"):
        ImageNetRecipe().check_ema_horizon(1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ImageNetRecipe().check_ema_horizon(1_000_000)
        CifarRecipe().check_ema_horizon(10)  # no EMA, nothing to say
    assert np.isclose(0.9999**30000, math.exp(-3), rtol=1e-3)
