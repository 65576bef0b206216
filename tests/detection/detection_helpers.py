"""Shared settings of the detection tests (a module name no other test folder uses)."""

from __future__ import annotations

EXPERIMENT = "fasterrcnn_nasnet_mobile_coco"
SIZE = 64  # the smallest input the FPN (top stride 64) takes
TILE = 128
# NASNet-A, ImageNet skeleton, 1 @ 96: levels '2'..'5' at 64x64 are 16, 8, 4, 2 pixels.
TINY_BACKBONE = {"penultimate_filters": 96, "num_blocks": 1}


def tiny_overrides(**nasnet):
    return {"task": {"model": {"backbone": {"nasnet": {**TINY_BACKBONE, **nasnet}}}}}
