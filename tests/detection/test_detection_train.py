"""Faster R-CNN (Model Garden) on our NASNet backbone trains, evaluates, predicts and exports.

The data is real: tiles of DeepForest's aerial tree-crown photos, split by photo.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf

pytestmark = pytest.mark.slow


def _by_name(variables, fragment):
    matches = [v for v in variables if fragment in v.name]
    assert matches, f"no variable named like {fragment!r} in {[v.name for v in variables][:8]}..."
    return matches[0]


def test_split_is_by_photo(tree_dataset):
    directory, card = tree_dataset
    sources = {}
    for split in ("train", "validation"):
        with open(os.path.join(directory, f"{split}.json")) as f:
            sources[split] = {image["source"] for image in json.load(f)["images"]}
    assert sources["train"] and sources["validation"] and not sources["train"] & sources["validation"]
    assert card["splits"]["train"]["boxes"] > 0 and card["splits"]["validation"]["boxes"] > 0


def test_the_bridge_trains_and_coco_metrics_come_out(trained):
    """Kernels and BatchNorm scale/offset of the backbone changed; frozen moving statistics did not."""
    model_dir, metrics, model = trained
    initial = tf.saved_model.load(os.path.join(model_dir, "backbone", "1"))
    after = {v.name: v for v in model.backbone.weights}

    def changed(fragment):
        before = _by_name(initial.variables, fragment)
        now = _by_name(list(after.values()), fragment)
        return float(np.abs(now.numpy() - before.numpy()).max())

    for fragment in ("stem_conv1/kernel", "stem_bn1/gamma", "stem_bn1/beta"):
        assert changed(fragment) > 0, f"{fragment} did not train"
    assert len(model.backbone.trainable_weights) == len(initial.trainable_variables)
    assert changed("stem_bn1/moving_mean") == 0  # frozen BatchNorm: statistics untouched

    # pycocotools' numbers, from Model Garden's COCOEvaluator on the validation tiles.
    for key in ("AP", "AP50", "AP75", "ARmax100"):
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics[key])
    with open(os.path.join(model_dir, "eval_metrics.json")) as f:
        assert json.load(f)["AP"] == metrics["AP"]


def test_predict_draws_boxes_and_export_serves(trained, tree_dataset, tmp_path, capsys):
    from PIL import Image

    from nasnet_keras import cli

    model_dir, _, _ = trained
    directory, _ = tree_dataset
    with open(os.path.join(directory, "validation.json")) as f:
        image_name = json.load(f)["images"][0]["file_name"]
    image = os.path.join(directory + "_tiles", "validation", image_name)
    out = str(tmp_path / "pictures")
    # A barely trained detector scores low: draw everything to see boxes at all.
    assert cli.main(["detect", "predict", image, "--model-dir", model_dir, "--out", out, "--min-score", "0"]) == 0
    png = os.path.join(out, os.path.splitext(image_name)[0] + ".png")
    with Image.open(png) as picture:
        assert picture.format == "PNG" and picture.size == Image.open(image).size
        drawn = np.asarray(picture.convert("RGB")).astype(int)
    original = np.asarray(Image.open(image).convert("RGB")).astype(int)
    assert np.abs(drawn - original).max() > 0  # something was drawn
    with open(os.path.join(out, "detections.json")) as f:
        assert len(json.load(f)[image]["scores"]) > 0

    served = str(tmp_path / "served" / "1")
    assert cli.main(["detect", "export", "--model-dir", model_dir, "--out", served]) == 0
    assert "exported the detector" in capsys.readouterr().out
    with pytest.raises(ValueError, match="already exists; pass --overwrite"):
        from savedmodels.detection import runner

        runner.export(model_dir, served)
    # The SignatureDefs as TF Serving (and `saved_model_cli show`) read them from saved_model.pb,
    # read in-process with the CLI's own reader (a `saved_model_cli` subprocess re-imports TF).
    from tensorflow.python.tools import saved_model_utils

    (graph,) = saved_model_utils.read_saved_model(served).meta_graphs
    assert list(graph.meta_info_def.tags) == ["serve"]
    signatures = graph.signature_def
    inputs = {name: [(key, tf.dtypes.as_dtype(info.dtype).name) for key, info in signatures[name].inputs.items()]
              for name in ("serving_default", "serving_bytes", "serving_float")}
    assert inputs == {"serving_default": [("inputs", "uint8")], "serving_bytes": [("inputs", "string")],
                      "serving_float": [("inputs", "float32")]}, inputs
    for name in inputs:
        assert {"detection_boxes", "detection_scores", "detection_classes", "num_detections"} <= set(
            signatures[name].outputs), (name, sorted(signatures[name].outputs))
    loaded = tf.saved_model.load(served)
    encoded = tf.io.read_file(image)
    by_bytes = loaded.signatures["serving_bytes"](inputs=tf.stack([encoded]))
    by_float = loaded.signatures["serving_float"](inputs=tf.cast(tf.io.decode_image(encoded)[None], tf.float32))
    np.testing.assert_allclose(by_bytes["detection_scores"].numpy(), by_float["detection_scores"].numpy(), atol=1e-5)


def test_eval_restores_the_checkpoint(trained, capsys):
    """`nasnet detect eval` rebuilds the run from its card, restores the last checkpoint and gets
    the same COCO metrics as the evaluation at the end of training."""
    from nasnet_keras import cli

    model_dir, metrics, _ = trained
    assert cli.main(["detect", "eval", "--model-dir", model_dir]) == 0
    assert '"AP50"' in capsys.readouterr().out
    with open(os.path.join(model_dir, "eval_metrics.json")) as f:
        again = json.load(f)
    for key in ("AP", "AP50", "ARmax100"):
        assert again[key] == pytest.approx(metrics[key], abs=1e-6), key
