"""TensorFlow's own `saved_model_cli` reads the export as TF Serving would (tag `serve`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from savedmodel_helpers import CLASSES, SIZE

SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")


def run_cli(*args):
    assert os.path.exists(SAVED_MODEL_CLI), f"saved_model_cli (installed with tensorflow) not found beside {sys.executable}"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([SAVED_MODEL_CLI, *args], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def signature_blocks(text):
    """{signature name: its block of `show --all` output}."""
    parts = re.split(r"^signature_def\['([^']+)'\]:\n", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def tensor_info(block, direction, name):
    match = re.search(rf"{direction}\['{name}'\] tensor_info:\n\s+dtype: (\w+)\n\s+shape: (.+)\n", block)
    assert match, f"{direction} {name!r} not listed in:\n{block}"
    return match.group(1), match.group(2)


def test_show_all_lists_documented_signatures(exported):
    out = run_cli("show", "--dir", exported.path, "--all")
    assert "MetaGraphDef with tag-set: 'serve'" in out
    blocks = signature_blocks(out)
    assert {"serving_default", "serving_bytes", "features"} <= set(blocks)
    image = ("DT_FLOAT", f"(-1, {SIZE}, {SIZE}, 3)")
    assert tensor_info(blocks["serving_default"], "inputs", "images") == image
    assert tensor_info(blocks["features"], "inputs", "images") == image
    assert tensor_info(blocks["serving_bytes"], "inputs", "image_bytes") == ("DT_STRING", "(-1)")
    for name in ("serving_default", "serving_bytes"):
        assert tensor_info(blocks[name], "outputs", "probabilities") == ("DT_FLOAT", f"(-1, {CLASSES})")
        assert tensor_info(blocks[name], "outputs", "classes") == ("DT_INT32", "(-1, 3)")
        assert tensor_info(blocks[name], "outputs", "scores") == ("DT_FLOAT", "(-1, 3)")
        assert "Method name is: tensorflow/serving/predict" in blocks[name]
    assert tensor_info(blocks["features"], "outputs", "features") == ("DT_FLOAT", "(-1, 96)")
    # The reusable __call__ is there too, traced for both values of `training`.
    call = out[out.index("Function Name: '__call__'"):]
    assert "Value: True" in call and "Value: False" in call


def test_run_on_a_saved_input(classifier, exported, images, tmp_path):
    np.save(tmp_path / "images.npy", images[:2])
    run_cli("run", "--dir", exported.path, "--tag_set", "serve", "--signature_def", "serving_default",
            "--inputs", f"images={tmp_path / 'images.npy'}", "--outdir", str(tmp_path / "out"))
    probabilities = np.load(tmp_path / "out" / "probabilities.npy")
    expected = classifier(images[:2] / 127.5 - 1.0, training=False).numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    assert np.load(tmp_path / "out" / "classes.npy").shape == (2, 3)
