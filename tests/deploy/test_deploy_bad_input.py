"""Bad export and runtime requests are refused with errors that say what to do, and leave nothing behind."""

from __future__ import annotations

import os
import sys

import pytest

from nasnet_keras import cli
from savedmodels import deploy, formats, runtimes


def test_unknown_format(searched, tmp_path):
    with pytest.raises(ValueError, match=r"`format` must be one of 'saved_model', 'onnx', 'litert', 'openvino'. "
                                         r"Received: format='coreml'"):
        deploy.export(searched, str(tmp_path / "m"), format="coreml")
    assert not os.path.exists(tmp_path / "m")


@pytest.mark.parametrize("fmt, quantize, accepted", [
    ("openvino", "float16", r"it accepts 'none', 'int8'\. 'float16' is available for format 'litert'"),
    ("saved_model", "float16", r"it accepts 'none'\. 'float16' is available for format 'litert'"),
    ("saved_model", "int8", r"it accepts 'none'\. 'int8' is available for format 'onnx', 'litert' and 'openvino'"),
    ("onnx", "float16", r"it accepts 'none', 'int8'\. 'float16' is available for format 'litert'"),
])
def test_quantization_the_format_does_not_support(searched, tmp_path, fmt, quantize, accepted):
    with pytest.raises(ValueError, match=rf"Format '{fmt}' does not support quantize='{quantize}'; {accepted}"):
        deploy.export(searched, str(tmp_path / "m"), format=fmt, quantize=quantize, calibration_data="fashion_mnist")
    assert not os.path.exists(tmp_path / "m")


def test_quantization_arguments(searched, tmp_path):
    with pytest.raises(ValueError, match=r"`quantize` must be one of 'none', 'int8', 'float16'. Received: quantize='int4'"):
        deploy.export(searched, str(tmp_path / "m"), format="onnx", quantize="int4")
    with pytest.raises(ValueError, match=r"quantize='int8' needs representative images .*--calibration-data"):
        deploy.export(searched, str(tmp_path / "m"), format="litert", quantize="int8")
    with pytest.raises(ValueError, match=r"calibration_data is used only with quantize='int8'"):
        deploy.export(searched, str(tmp_path / "m"), format="litert", calibration_data="fashion_mnist")
    with pytest.raises(ValueError, match=r"`calibration_samples` must be an integer >= 1. Received: calibration_samples=0"):
        deploy.export(searched, str(tmp_path / "m"), format="onnx", quantize="int8", calibration_data="fashion_mnist",
                      calibration_samples=0)
    with pytest.raises(ValueError, match=r"'.*no_such_dir' is neither a dataset \(cifar10, .*fashion_mnist.*\) nor an "
                                         r"image file or directory"):
        deploy.export(searched, str(tmp_path / "m"), format="onnx", quantize="int8",
                      calibration_data=str(tmp_path / "no_such_dir"))
    assert not os.path.exists(tmp_path / "m")


@pytest.mark.parametrize("fmt, module", [("onnx", "tf2onnx"), ("onnx", "onnxruntime"), ("openvino", "openvino")])
def test_missing_runtime_extra_at_export_names_the_extra(searched, tmp_path, monkeypatch, fmt, module):
    monkeypatch.setitem(sys.modules, module, None)  # what an environment without the package gives
    with pytest.raises(formats.MissingExtraError, match=rf"needs the Python package '{module}'.*"
                                                        rf"Install it with: pip install nasnet_keras\[{fmt}\]"):
        deploy.export(searched, str(tmp_path / "m"), format=fmt)
    assert not os.path.exists(tmp_path / "m")


@pytest.mark.parametrize("module", ["tf2onnx", "onnxruntime"])
def test_openvino_int8_without_the_onnx_extra_names_both_extras(searched, tmp_path, monkeypatch, module):
    """OpenVINO int8 is ONNX Runtime's QDQ model converted by OpenVINO: it needs the onnx extra as well."""
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(formats.MissingExtraError, match=rf"Format 'openvino' with quantize='int8' needs the Python "
                                                        rf"package '{module}'.*"
                                                        rf"Install it with: pip install nasnet_keras\[onnx,openvino\]"):
        deploy.export(searched, str(tmp_path / "m"), format="openvino", quantize="int8",
                      calibration_data="fashion_mnist")
    assert not os.path.exists(tmp_path / "m")
    if module == "tf2onnx":
        deploy.export(searched, str(tmp_path / "fp32"), format="openvino")  # fp32 OpenVINO does not need it


@pytest.mark.parametrize("fmt, module", [("onnx", "onnxruntime"), ("litert", "ai_edge_litert.interpreter"),
                                         ("openvino", "openvino")])
def test_missing_runtime_extra_at_inference_names_the_extra(searched_exports, monkeypatch, capsys, fmt, module):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(formats.MissingExtraError, match=rf"pip install nasnet_keras\[{fmt}\]"):
        runtimes.load(searched_exports[fmt].model_file)
    assert cli.main(["predict", searched_exports[fmt].model_file, "x.png"]) == 2
    assert f"pip install nasnet_keras[{fmt}]" in capsys.readouterr().err


def test_existing_version_is_not_overwritten(searched, tmp_path):
    base = tmp_path / "m"
    (base / "1").mkdir(parents=True)
    (base / "1" / "model.onnx").write_bytes(b"the old model")
    with pytest.raises(ValueError, match=r"Version directory .*/m/1' already exists; pass overwrite=True "
                                         r"\(CLI: --overwrite\).*next free: 2"):
        deploy.export(searched, str(base), 1, format="onnx")
    assert (base / "1" / "model.onnx").read_bytes() == b"the old model"
    assert sorted(os.listdir(base)) == ["1"]


def _failing_converter(network, fmt, quantize, images, directory):
    with open(os.path.join(directory, fmt.filename), "wb") as f:
        f.write(b"half a model")
    raise RuntimeError("converter crashed")


def test_failed_export_leaves_nothing(searched, tmp_path, monkeypatch):
    monkeypatch.setattr(deploy, "_convert", _failing_converter)
    base = tmp_path / "new_base"
    with pytest.raises(RuntimeError, match="converter crashed"):
        deploy.export(searched, str(base), format="onnx")
    assert not os.path.exists(base)  # not even the base directory it created

    kept = tmp_path / "kept"
    (kept / "1").mkdir(parents=True)
    (kept / "1" / "model.onnx").write_bytes(b"the old model")
    with pytest.raises(RuntimeError, match="converter crashed"):
        deploy.export(searched, str(kept), 1, format="onnx", overwrite=True)
    assert sorted(os.listdir(kept)) == ["1"]  # no partial left beside it
    assert (kept / "1" / "model.onnx").read_bytes() == b"the old model"


def test_overwrite_replaces_the_version(searched, tmp_path):
    base = tmp_path / "m"
    (base / "1").mkdir(parents=True)
    (base / "1" / "stale.txt").write_text("old")
    result = deploy.export(searched, str(base), 1, format="onnx", overwrite=True)
    assert sorted(os.listdir(base / "1")) == ["model.onnx", "model_card.json"]
    assert runtimes.load(result.model_file).format == "onnx"
    from savedmodels import next_version

    assert next_version(str(base)) == 2  # what an export without a version would write next


def test_cli_errors(searched, tmp_path, capsys):
    model = str(tmp_path / "searched.keras")
    searched.save(model)
    out = str(tmp_path / "out")
    assert cli.main(["export", "--model", model, "--out", out, "--format", "onnx", "--quantize", "float16"]) == 2
    assert "Format 'onnx' does not support quantize='float16'" in capsys.readouterr().err
    assert cli.main(["export", "--model", model, "--out", out, "--format", "litert", "--backbone"]) == 2
    assert "--backbone applies to --format saved_model only" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.main(["export", "--model", model, "--out", out, "--format", "coreml"])
    assert info.value.code == 2
    assert "invalid choice: 'coreml'" in capsys.readouterr().err
    assert not os.path.exists(out)
