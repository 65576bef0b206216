"""One tiny detector trained once on real tree-crown tiles, shared by the detection tests.

Training Faster R-CNN costs mostly tracing (the train step, then the evaluation step):
minutes of CPU on the project's 2-core machine whatever the step count, so the tests share
one run of 3 steps and check different things of it.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from detection_helpers import EXPERIMENT, SIZE, TILE, tiny_overrides  # noqa: E402


@pytest.fixture(scope="session")
def tree_dataset(tmp_path_factory):
    """DeepForest tiles: 4 training tiles (from 3 photos' tiles) and 2 validation tiles (another photo)."""
    from savedmodels.detection import treecrowns

    directory = str(tmp_path_factory.mktemp("trees") / "data")
    card = treecrowns.prepare(directory, tile_size=TILE, max_tiles={"train": 4, "validation": 2})
    return directory, card


@pytest.fixture(scope="session")
def trained(tree_dataset, tmp_path_factory):
    """(model_dir, metrics, tf_keras model) after 3 steps of batch 2 with frozen BatchNorm."""
    from savedmodels.detection import runner

    directory, _ = tree_dataset
    model_dir = str(tmp_path_factory.mktemp("run") / "model")
    params = runner.configure(EXPERIMENT, directory, steps=3, batch_size=2, eval_batch_size=1, input_size=SIZE,
                              learning_rate=0.05, overrides=tiny_overrides())
    metrics, model = runner.train(params, EXPERIMENT, model_dir, return_model=True)
    return model_dir, metrics, model
