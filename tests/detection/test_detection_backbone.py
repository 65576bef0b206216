"""The `nasnet` backbone in Model Garden's factory: levels, specs, a searched genotype, config errors."""

from __future__ import annotations

import numpy as np
import pytest

from detection_helpers import EXPERIMENT, SIZE, TINY_BACKBONE


def test_experiments_are_registered_with_offline_settings():
    from official.core import exp_factory

    import savedmodels.detection.experiments  # noqa: F401

    mobile = exp_factory.get_exp_config(EXPERIMENT)
    large = exp_factory.get_exp_config("fasterrcnn_nasnet_large_coco")
    for config, variant, size in ((mobile, "mobile", 640), (large, "large", 1216)):
        config.validate()
        assert config.task.model.backbone.type == "nasnet"
        assert config.task.model.backbone.nasnet.variant == variant
        assert config.task.model.backbone.nasnet.frozen_batchnorm is True
        assert config.task.model.input_size == [size, size, 3] and size % 64 == 0
        assert config.task.model.include_mask is False
        assert config.task.init_checkpoint is None and config.task.annotation_file is None
        assert config.runtime.mixed_precision_dtype == "float32"
        assert config.task.train_data.dtype == config.task.validation_data.dtype == "float32"


def test_a_searched_genotype_builds_through_the_factory(tmp_path):
    """Model Garden's factory builds the backbone from a genotype JSON: levels '2'..'5' at strides 4..32."""
    import tf_keras
    from official.vision.modeling.backbones import factory

    from nasnet_keras.genotype import Genotype
    from savedmodels.detection import backbone

    searched = Genotype.from_blocks(
        normal=[(0, 1, "sep_conv_3x3", "identity"), (0, 2, "avg_pool_3x3", "max_pool_3x3", "concat")],
        reduction=[(0, 1, "sep_conv_5x5", "max_pool_3x3"), (2, 1, "conv_1x1", "identity")],
    )
    path = str(tmp_path / "searched.json")
    searched.save(path)
    config = backbone.Backbone(nasnet=backbone.NASNet(genotype=path, export_dir=str(tmp_path / "export"),
                                                      **TINY_BACKBONE))
    specs = tf_keras.layers.InputSpec(shape=[None, SIZE, SIZE, 3])
    model = factory.build_backbone(specs, config, norm_activation_config=None)
    assert sorted(model.output_specs) == ["2", "3", "4", "5"]
    for level, shape in model.output_specs.items():
        assert shape[1] == SIZE // 2 ** int(level)
    outputs = model(np.zeros((1, SIZE, SIZE, 3), np.float32))
    assert all(np.isfinite(v.numpy()).all() for v in outputs.values())
    from savedmodels import read_model_card

    assert read_model_card(str(tmp_path / "export" / "1"))["genotype"]["id"] == searched.id

    with pytest.raises(ValueError, match=r"takes 64x64 images, but the detector's input_size is 128x128"):
        backbone.NASNetBackbone(str(tmp_path / "export" / "1"),
                                input_specs=tf_keras.layers.InputSpec(shape=[None, 128, 128, 3]))
    with pytest.raises(ValueError, match=r"2 <= min_level <= max_level <= 5. Received: min_level=3, max_level=6"):
        backbone.NASNetBackbone(str(tmp_path / "export" / "1"), min_level=3, max_level=6)
