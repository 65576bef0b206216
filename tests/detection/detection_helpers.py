"""Shared settings of the detection tests (a module name no other test folder uses)."""

from __future__ import annotations

EXPERIMENT = "fasterrcnn_nasnet_mobile_coco"
SIZE = 64  # the smallest input the FPN (top stride 64) takes
TILE = 128
# NASNet-A, ImageNet skeleton, 1 @ 96: levels '2'..'5' at 64x64 are 16, 8, 4, 2 pixels.
TINY_BACKBONE = {"penultimate_filters": 96, "num_blocks": 1}


def tiny_overrides(**nasnet):
    """The tiny backbone; every box kept by the detector (a 3-step model scores below the 0.05 default)."""
    return {"task": {"model": {"backbone": {"nasnet": {**TINY_BACKBONE, **nasnet}},
                               "detection_generator": {"pre_nms_score_threshold": 0.0}}}}
