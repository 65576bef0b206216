"""Quantized exports of a model trained on real data keep its answers on real test images.

A small NASNet-A is trained briefly on Fashion-MNIST (offline IDX files through
`nasnet_keras.data`), exported through `nasnet export --quantize int8 --calibration-data
fashion_mnist` (ONNX Runtime, OpenVINO) and the API (LiteRT int8 and float16), and each export
classifies Fashion-MNIST test images it never saw. The full-scale figure (10,000 test
images, a model trained 2 epochs on 12,000) is `benchmarks/deploy_agreement.py`; this is the
same measurement at test scale, so its bar is lower than the issue's 98% (see MIN_AGREEMENT).
"""

from __future__ import annotations

import numpy as np
import pytest

from nasnet_keras import cli
from savedmodels import calibration, deploy, runtimes

SIZE = (28, 28)
# At this scale (1,000 test images of a model trained briefly) the agreement depends on the
# trained model more than on the export. The converters always get the model on Keras' own
# layers (nasnet_keras.kernel_copy.keras_kernels_copy), yet LiteRT int8 agreement of this fixture
# trained with seeds 0, 1, 2 was 94.7%, 96.8%, 98.7% (the same fixture trained on Keras'
# layers: 99.4%, 97.7%, 98.7%; 2026-12-02); exporting seed 0's model without the copy gave
# 95.1%. Earlier: the same weights in models built with the fused and with Keras' BatchNorm
# exported to identical agreement (OpenVINO int8 97.0/97.0%, ONNX 97.2/97.2%). The 98%
# is measured at full scale by benchmarks/deploy_agreement.py (10,000 images; 2026-12-01, fused
# BatchNorm, before the MatMul 1x1 convolutions: OpenVINO int8 99.04%, ONNX 99.07%, LiteRT int8
# 98.85%). The bar here guards against a broken export (which agrees on far fewer images);
# finer differences are the full-scale benchmark's to show (e.g. OpenVINO int8 quantizing the
# preprocessing's Sub too, savedmodels.quantize: 98.86% there, against 97.23% without it).
MIN_AGREEMENT = 0.93
TEST_IMAGES = 1000


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model, its .keras file): NASNet-A 1 @ F=8 trained 2 epochs on 4,000 Fashion-MNIST images."""
    import keras

    import nasnet_keras

    keras.utils.set_random_seed(0)
    images, labels = calibration.dataset_images("fashion_mnist", SIZE, 4000, split="train")
    model = nasnet_keras.NASNetCIFAR(input_shape=SIZE + (3,), filters=8, num_blocks=1, classes=10, name="fmnist")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(nasnet_keras.preprocess_input(images), labels, batch_size=64, epochs=2, verbose=0)
    path = str(tmp_path_factory.mktemp("trained") / "fmnist.keras")
    model.save(path)
    return model, path


@pytest.fixture(scope="module")
def test_split(trained):
    import nasnet_keras

    model, _ = trained
    images, labels = calibration.dataset_images("fashion_mnist", SIZE, TEST_IMAGES, split="test")
    expected = model.predict(nasnet_keras.preprocess_input(images.copy()), batch_size=250, verbose=0)
    assert np.mean(expected.argmax(-1) == labels) > 0.6, "the model did not learn; the agreement would mean little"
    return images, labels, expected


def _agreement(runner, test_split):
    images, _, expected = test_split
    got = np.concatenate([runner(images[i:i + 250]) for i in range(0, len(images), 250)])
    return float(np.mean(got.argmax(-1) == expected.argmax(-1))), float(np.abs(got - expected).max())


def _export_int8_by_the_cli(fmt, keras_file, out, capsys):
    """`nasnet export --format FMT --quantize int8`, calibrated on 64 Fashion-MNIST training images."""
    assert cli.main(["export", "--model", keras_file, "--out", out, "--format", fmt, "--quantize", "int8",
                     "--calibration-data", "fashion_mnist", "--calibration-samples", "64"]) == 0
    assert f"as {fmt} (int8" in capsys.readouterr().out


def test_onnx_int8_through_the_cli_agrees_with_fp32(trained, test_split, tmp_path, capsys):
    _, keras_file = trained
    out = str(tmp_path / "onnx_int8")
    _export_int8_by_the_cli("onnx", keras_file, out, capsys)
    runner = runtimes.load(out + "/1/model.onnx")
    assert runner.card["quantization"] == "int8"
    assert runner.card["calibration"] == {"dataset": "fashion_mnist", "split": "train[:64]", "images": 64}
    agreement, diff = _agreement(runner, test_split)
    assert agreement >= MIN_AGREEMENT, f"int8 ONNX agrees with fp32 on {agreement:.1%} of test images"
    assert diff > 1e-6  # it really is quantized


def test_openvino_int8_through_the_cli_agrees_with_fp32(trained, test_split, tmp_path, capsys):
    """ONNX Runtime's QDQ model converted by OpenVINO: an IR (no .onnx left), int8 in OpenVINO's kernels."""
    import openvino as ov

    from deploy_helpers import write_pngs

    _, keras_file = trained
    out = str(tmp_path / "openvino_int8")
    _export_int8_by_the_cli("openvino", keras_file, out, capsys)
    runner = runtimes.load(out + "/1")
    card = runner.card
    assert runner.format == "openvino" and runner.precision == "f32"
    assert set(card["files"]) == {"model.xml", "model.bin"}
    assert card["quantization"] == "int8" and "quantize_static" in card["quantizer"]
    assert "convert_model" in card["quantizer"]
    assert card["install"] == "pip install nasnet_keras[onnx,openvino]"
    assert {"onnxruntime", "openvino"} <= set(card["versions"])
    assert card["calibration"] == {"dataset": "fashion_mnist", "split": "train[:64]", "images": 64}
    assert "Sub" in card["quantizer"]
    core = ov.Core()
    ops = {op.get_type_name() for op in core.read_model(out + "/1/model.xml").get_ops()}
    assert "FakeQuantize" in ops  # the QDQ pairs, which OpenVINO runs as int8
    compiled = core.compile_model(out + "/1/model.xml", "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    executed = compiled.get_runtime_model().get_ops()  # what the CPU plugin really runs, and in what precision
    convolutions = {op.get_rt_info()["runtimePrecision"].astype(str) for op in executed
                    if op.get_rt_info()["layerType"].astype(str) == "Convolution"}
    assert convolutions == {"u8"}, convolutions  # every (depthwise) convolution in int8 kernels
    agreement, diff = _agreement(runner, test_split)
    assert agreement >= MIN_AGREEMENT, f"int8 OpenVINO agrees with fp32 on {agreement:.1%} of test images"
    assert diff > 1e-6
    # the default-precision (bf16 on AVX512-BF16) compile of the same file keeps the answers too
    agreement, _ = _agreement(runtimes.load(out + "/1", precision="default"), test_split)
    assert agreement >= MIN_AGREEMENT, f"at OpenVINO's default precision: {agreement:.1%}"

    images, _, _ = test_split
    folder = tmp_path / "images"
    folder.mkdir()
    write_pngs(str(folder), images[:2])
    assert cli.main(["predict", out + "/1/model.xml", str(folder), "--top-k", "2"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


@pytest.mark.parametrize("quantize", ["int8", "float16"])
def test_litert_quantized_agrees_with_fp32(trained, test_split, tmp_path, quantize):
    model, _ = trained
    result = deploy.export(model, str(tmp_path / quantize), format="litert", quantize=quantize,
                           calibration_data="fashion_mnist" if quantize == "int8" else None,
                           calibration_samples=64)
    agreement, diff = _agreement(runtimes.load(result.model_file), test_split)
    assert agreement >= (MIN_AGREEMENT if quantize == "int8" else 0.995), f"{quantize}: {agreement:.1%}"
    assert diff > 1e-6
    assert result.card["quantization"] == quantize
    if quantize == "int8":  # the classifier head stays float (the converter's selective quantization)
        from ai_edge_litert.interpreter import Interpreter

        assert "denylisted_ops" in result.card["quantizer"]
        types = {t["dtype"].__name__ for t in Interpreter(model_path=result.model_file).get_tensor_details()}
        assert {"int8", "float32"} <= types


def test_calibration_from_image_files(trained, test_split, tmp_path):
    """The user's own images calibrate as a named dataset does."""
    from deploy_helpers import write_pngs

    model, _ = trained
    images, _ = calibration.dataset_images("fashion_mnist", SIZE, 40, split="train", offset=1000)
    folder = tmp_path / "calibration"
    folder.mkdir()
    write_pngs(str(folder), images)
    loaded, described = calibration.load([str(folder)], SIZE, samples=32)
    assert loaded.shape == (32, 28, 28, 3) and described["images"] == 32
    np.testing.assert_array_equal(loaded[0], images[0])  # image_0.png, decoded as it was written
    result = deploy.export(model, str(tmp_path / "m"), format="onnx", quantize="int8", calibration_data=[str(folder)],
                           calibration_samples=32)
    assert result.card["calibration"]["images"] == 32 and "image_0.png" in result.card["calibration"]["files"]
    agreement, _ = _agreement(runtimes.load(result.model_file), test_split)
    assert agreement >= MIN_AGREEMENT
