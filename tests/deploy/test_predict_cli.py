"""`nasnet predict MODEL IMAGE...` runs every format on image files and prints the top-k class names."""

from __future__ import annotations

import json

import numpy as np
import pytest
from deploy_helpers import CLASS_NAMES, RUNTIME_FORMATS, keras_probabilities, pixels, write_pngs

from nasnet_keras import cli


@pytest.fixture(scope="module")
def png_files(tmp_path_factory):
    return write_pngs(str(tmp_path_factory.mktemp("images")), pixels(3, seed=7))


@pytest.mark.parametrize("fmt", ("saved_model",) + RUNTIME_FORMATS)
def test_predict_prints_top_k_names_for_every_format(searched, searched_exports, png_files, capsys, fmt):
    from savedmodels.calibration import read_images

    result = searched_exports[fmt]
    target = result.model_file if fmt != "saved_model" else result.path
    assert cli.main(["predict", target, *png_files, "--top-k", "2", "--json"]) == 0
    answers = json.loads(capsys.readouterr().out)
    expected = keras_probabilities(searched, read_images(png_files, (32, 32)))
    assert [a["image"] for a in answers] == png_files
    for answer, row in zip(answers, expected):
        best = np.argsort(-row)[:2]
        assert [t["class"] for t in answer["top"]] == best.tolist()
        assert [t["name"] for t in answer["top"]] == [CLASS_NAMES[i] for i in best]
        np.testing.assert_allclose([t["probability"] for t in answer["top"]], row[best], atol=1e-4)


def test_predict_text_output_and_version_directory(searched_exports, png_files, capsys):
    # a version directory is enough: the format is found from its contents
    assert cli.main(["predict", searched_exports["onnx"].path, png_files[0], "--top-k", "1"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{png_files[0]}: ")
    assert any(f"{name} (" in line for name in CLASS_NAMES)


def test_predict_bad_input(searched_exports, png_files, tmp_path, capsys):
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    assert cli.main(["predict", searched_exports["onnx"].model_file, str(not_an_image)]) == 2
    assert "is not a readable image" in capsys.readouterr().err
    assert cli.main(["predict", str(tmp_path / "missing.onnx"), png_files[0]]) == 2
    assert "Model file not found" in capsys.readouterr().err
    assert cli.main(["predict", str(tmp_path), png_files[0]]) == 2
    assert "holds no exported model" in capsys.readouterr().err
    weird = tmp_path / "model.pt"
    weird.write_text("x")
    assert cli.main(["predict", str(weird), png_files[0]]) == 2
    assert "Cannot tell the format" in capsys.readouterr().err
