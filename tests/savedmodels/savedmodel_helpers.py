"""Constants and builders shared by the savedmodels tests (a module name no other test folder uses)."""

from __future__ import annotations

SIZE = 64
CLASSES = 5
CLASS_NAMES = ["class_a", "class_b", "class_c", "class_d", "class_e"]


def tiny_nasnet(**kwargs):
    """NASNet-A, ImageNet skeleton, 1 @ 96 at 64x64: levels '2'..'5', ~41k parameters."""
    import nasnet_keras

    args = dict(input_shape=(SIZE, SIZE, 3), penultimate_filters=96, num_blocks=1, weights=None,
                classes=CLASSES, default_size=SIZE, weight_decay=1e-4, name="tiny_nasnet")
    args.update(kwargs)
    return nasnet_keras.NASNet(**args)
