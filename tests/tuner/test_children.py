"""tuner.children: the paper's child recipe, and failures that end a trial, not a search.

Children here are as small as the skeleton allows (B=2 cells, N=1, 4 filters, 16x16
images, 128 real Fashion-MNIST training images, one epoch, eager): seconds each.
"""

import os

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

from nasnet_keras import data
from nasnet_keras.genotype import Genotype
from tuner import children
from tuner.children import ChildConfig, ChildFailedError, train_child

pytestmark = pytest.mark.skipif(
    not os.path.exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"),
    reason="Fashion-MNIST IDX files missing: apt-get install dataset-fashion-mnist (make data)",
)

TINY = ChildConfig(classes=10, num_cells=1, filters=4, epochs=1, image_size=16, batch_size=64, run_eagerly=True)
GENOTYPE = Genotype.from_blocks(
    normal=[(0, 1, "sep_conv_3x3", "identity"), (2, 0, "avg_pool_3x3", "conv_1x1", "concat")],
    reduction=[(0, 1, "max_pool_3x3", "sep_conv_5x5"), (2, 1, "identity", "conv_1x3_3x1")],
    name="tiny",
)


@pytest.fixture(scope="module")
def split():
    return data.search_split("fashion_mnist", validation_size=64, subset=128, seed=0)


def test_defaults_are_the_papers_search_recipe():
    config = ChildConfig()
    assert (config.num_cells, config.epochs, config.momentum) == (2, 20, 0.9)  # App. A.6
    assert config.weight_decay == 5e-4 and config.filters == 32  # TF-slim CIFAR
    assert ChildConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match=r"`filters` must be an integer >= 2. Received: filters=1"):
        ChildConfig(filters=1)
    with pytest.raises(ValueError, match=r"image_size=4"):
        ChildConfig(image_size=4)
    with pytest.raises(ValueError, match=r"Unknown ChildConfig keys \['lr'\]"):
        ChildConfig.from_dict({"lr": 0.1})


def test_child_is_the_cifar_skeleton_with_sgd_cosine_and_weight_decay():
    model = children.build_child(GENOTYPE, (16, 16, 1), TINY)
    children.compile_child(model, TINY.replace(epochs=3), steps_per_epoch=7)
    cells = [layer for layer in model.layers if "cell" in type(layer).__name__.lower()]
    assert len(cells) == 5  # N=1: normal, reduction, normal, reduction, normal
    assert isinstance(model.optimizer, keras.optimizers.SGD) and model.optimizer.momentum == 0.9
    schedule = model.optimizer._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    assert schedule.decay_steps == 21 and schedule.alpha == 0.0  # one period over all steps
    assert model.losses, "weight decay adds L2 penalties"
    assert model.output_shape == (None, 10)


def test_compile_child_creates_the_training_variables_so_fit_traces_once():
    """No variable may be created inside the traced train step: TensorFlow would trace it twice."""
    config = TINY.replace(run_eagerly=False, batch_size=4)
    model = children.build_child(GENOTYPE, (16, 16, 1), config)
    children.compile_child(model, config, steps_per_epoch=2)
    assert model.optimizer.built and len(model.optimizer.variables) > len(model.trainable_variables)

    def variables():
        return {id(v) for v in [*model.variables, *model.optimizer.variables,
                                *(v for metric in model.metrics for v in metric.variables)]}

    before = variables()
    traces = []
    original = model.train_step
    model.train_step = lambda data: (traces.append(1), original(data))[1]
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 16, 16, 1)).astype("float32"), rng.integers(0, 10, 8)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    assert variables() == before
    assert len(traces) == 1, f"train step traced {len(traces)} times"
    # Without it, Keras creates them in the trace and TensorFlow traces again.
    model = children.build_child(GENOTYPE, (16, 16, 1), config)
    children.compile_child(model, config, steps_per_epoch=2, create_variables=False)
    traces.clear()
    original_2 = model.train_step
    model.train_step = lambda data: (traces.append(1), original_2(data))[1]
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    assert len(traces) == 2


def test_train_child_scores_on_the_held_out_split(split):
    train, validation = split
    result = train_child(GENOTYPE, train, validation, TINY, verbose=0)
    assert result.genotype_id == GENOTYPE.id
    assert 0.0 <= result.accuracy <= 1.0 and result.epochs == 1 and result.params > 1000
    assert result.model is None  # released unless asked for
    assert result.metrics() == {"val_accuracy": result.accuracy, "val_loss": result.loss,
                                "params": float(result.params), "train_seconds": result.seconds}


def test_a_diverging_child_fails_the_trial(split):
    train, validation = split
    with pytest.raises(ChildFailedError, match="diverged") as info:
        train_child(GENOTYPE, train, validation, TINY.replace(learning_rate=1e30), verbose=0)
    assert info.value.reason == "nan"
    assert isinstance(info.value, keras_tuner.errors.FailedTrialError)  # FAILED, not retried


def test_an_out_of_memory_child_fails_the_trial_and_releases_memory(split, monkeypatch):
    train, validation = split
    released = []
    monkeypatch.setattr(children, "release_memory", lambda: released.append(1))

    def fit(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape [64,96,16,16]")

    monkeypatch.setattr(keras.Model, "fit", fit)
    with pytest.raises(ChildFailedError, match="ran out of memory") as info:
        train_child(GENOTYPE, train, validation, TINY, verbose=0)
    assert info.value.reason == "oom"
    assert isinstance(info.value.__cause__, tf.errors.ResourceExhaustedError)
    assert len(released) >= 2  # before the child, and after its failure


def _meta_optimizer_disabled() -> bool:
    """What a function first run now is instantiated with (the per-thread call options)."""
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.eager import context

    config = config_pb2.ConfigProto.FromString(context.context().function_call_options.config_proto_serialized)
    return config.graph_options.rewrite_options.disable_meta_optimizer


def test_child_graph_options_turn_grappler_off_for_the_block_and_restore_it():
    before = _meta_optimizer_disabled()
    with children.child_graph_options(TINY):
        assert _meta_optimizer_disabled()
        assert tf.config.optimizer.get_experimental_options()["disable_meta_optimizer"] is True
    assert _meta_optimizer_disabled() == before
    with children.child_graph_options(TINY.replace(grappler=True)):  # the old path: untouched
        assert _meta_optimizer_disabled() == before
    with pytest.raises(RuntimeError):
        with children.child_graph_options(TINY):
            raise RuntimeError("a failing child")
    assert _meta_optimizer_disabled() == before


def test_grappler_must_be_a_bool():
    with pytest.raises(ValueError, match="grappler"):
        ChildConfig(grappler="off")
