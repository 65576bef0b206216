"""The datasets this package knows, as one table.

Each entry says what the data is (classes, image shape, split sizes) and where it can
come from (a TFDS name, optionally a local IDX layout and the package that installs
it). Keeping these facts static means `info()` answers offline and before any data is
present, and an error about missing data can say exactly how to get it.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a caller needs to size a model and a split, without reading any images.

    `image_shape` has `None` for height/width when images vary in size (ImageNet); such
    data must be resized (`pipeline(..., image_size=...)`) before a model sees it.
    """

    name: str
    num_classes: int
    image_shape: tuple[int | None, int | None, int]
    splits: dict[str, int]
    class_names: tuple[str, ...]

    @property
    def num_train(self) -> int:
        return self.splits["train"]


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A catalog entry: the facts of `DatasetInfo` plus how to obtain the data.

    `idx_dirs` names the sub-directories that may hold IDX files (MNIST layout:
    `train-images-idx3-ubyte[.gz]`, `t10k-...`); `system_dir` is where a distribution
    package installs them; `install_hint` tells a user how to get them. `manual_download`
    marks TFDS datasets that cannot be downloaded automatically (ImageNet).
    """

    name: str
    num_classes: int
    image_shape: tuple[int | None, int | None, int]
    splits: dict[str, int]
    class_names: tuple[str, ...] = ()
    tfds_name: str | None = None
    idx_dirs: tuple[str, ...] = ()
    system_dir: str | None = None
    install_hint: str | None = None
    manual_download: str | None = None


FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)

CATALOG: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "cifar10", 10, (32, 32, 3), {"train": 50_000, "test": 10_000}, CIFAR10_CLASSES, tfds_name="cifar10",
        ),
        DatasetSpec("cifar100", 100, (32, 32, 3), {"train": 50_000, "test": 10_000}, tfds_name="cifar100"),
        DatasetSpec(
            "fashion_mnist", 10, (28, 28, 1), {"train": 60_000, "test": 10_000}, FASHION_MNIST_CLASSES,
            tfds_name="fashion_mnist",
            idx_dirs=("fashion-mnist", "fashion_mnist"),
            system_dir="/usr/share/datasets/fashion-mnist",
            install_hint="apt-get install dataset-fashion-mnist (Debian/Ubuntu; installs the IDX files "
                         "under /usr/share/datasets/fashion-mnist)",
        ),
        DatasetSpec(
            "mnist", 10, (28, 28, 1), {"train": 60_000, "test": 10_000}, tuple(str(i) for i in range(10)),
            tfds_name="mnist", idx_dirs=("mnist",),
        ),
        DatasetSpec(
            "imagenet2012", 1000, (None, None, 3), {"train": 1_281_167, "validation": 50_000},
            tfds_name="imagenet2012",
            manual_download="ImageNet cannot be downloaded automatically: get ILSVRC2012_img_train.tar and "
                            "ILSVRC2012_img_val.tar from https://image-net.org, put them in a directory and pass "
                            "it as manual_dir=... (default <data_dir>/downloads/manual); TFDS then prepares "
                            "the dataset once",
        ),
    )
}


def known_names() -> str:
    return ", ".join(sorted(CATALOG))


def get_spec(name: str) -> DatasetSpec:
    if not isinstance(name, str) or name not in CATALOG:
        raise ValueError(f"Unknown dataset {name!r}. Known datasets: {known_names()}")
    return CATALOG[name]
