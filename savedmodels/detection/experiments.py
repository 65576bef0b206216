"""Experiments `fasterrcnn_nasnet_mobile_coco` and `fasterrcnn_nasnet_large_coco` for `exp_factory`.

Model Garden's own `fasterrcnn_resnetfpn_coco` (Faster R-CNN = `MaskRCNNModel` without the
mask head, FPN over levels 2..6) with the `nasnet` backbone, and settings that run offline:
no initial checkpoint (the default points to cloud storage), no annotation file (the COCO
evaluator takes the ground truth from the validation records), float32 everywhere
(the defaults are bfloat16, which CPUs run slowly or not at all).

Input sizes: the paper's (Sec. 4.3) are 600 for NASNet-A Mobile and 1200 for Large (shorter
side); Model Garden pads to a square `input_size` that the FPN's top level (2**6 = 64)
divides, so the defaults are the next multiples of 64: 640 and 1216. Data paths and
`num_classes` are set by `nasnet detect train --data` (or by hand: `task.train_data.input_path`).
"""

from __future__ import annotations


from official.core import config_definitions as cfg
from official.core import exp_factory

from savedmodels.detection.backbone import NAME, Backbone, NASNet

FPN_TOP_STRIDE = 2 ** 6  # Model Garden's Faster R-CNN: FPN min_level 2, max_level 6
PAPER_INPUT = {"mobile": 600, "large": 1200}
COCO_CLASSES = 91  # COCO's category ids 1..90 plus background 0


def paper_input_size(variant: str) -> int:
    """The paper's input size rounded up to what the FPN accepts."""
    size = PAPER_INPUT[variant]
    return -(-size // FPN_TOP_STRIDE) * FPN_TOP_STRIDE


def fasterrcnn_nasnet(variant: str = "mobile", input_size: int | None = None) -> cfg.ExperimentConfig:
    """Model Garden's Faster R-CNN + FPN recipe with a NASNet backbone, runnable offline."""
    config = exp_factory.get_exp_config("fasterrcnn_resnetfpn_coco")
    size = input_size or paper_input_size(variant)
    config.runtime.mixed_precision_dtype = "float32"
    task = config.task
    task.init_checkpoint = None
    task.init_checkpoint_modules = "all"  # an init_checkpoint would be a whole detector's; the backbone's
    # own weights come with its SavedModel (backbone.nasnet.saved_model / weights)
    task.annotation_file = None
    task.model.backbone = Backbone(type=NAME, nasnet=NASNet(variant=variant))
    task.model.input_size = [size, size, 3]
    task.model.num_classes = COCO_CLASSES
    for data in (task.train_data, task.validation_data):
        data.dtype = "float32"
        data.input_path = ""
    return config


@exp_factory.register_config_factory("fasterrcnn_nasnet_mobile_coco")
def fasterrcnn_nasnet_mobile_coco() -> cfg.ExperimentConfig:
    """Faster R-CNN + FPN on NASNet-A Mobile (4 @ 1056), 640x640."""
    return fasterrcnn_nasnet("mobile")


@exp_factory.register_config_factory("fasterrcnn_nasnet_large_coco")
def fasterrcnn_nasnet_large_coco() -> cfg.ExperimentConfig:
    """Faster R-CNN + FPN on NASNet-A Large (6 @ 4032), 1216x1216."""
    return fasterrcnn_nasnet("large")


EXPERIMENTS = ("fasterrcnn_nasnet_mobile_coco", "fasterrcnn_nasnet_large_coco")
