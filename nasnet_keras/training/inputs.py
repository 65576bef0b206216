"""Input pipelines of the recipes: which splits, what size, which augmentation, which targets.

`plan_data` answers every question about the data from the catalog alone (classes,
split sizes, image size) so that a wrong split or size is reported before any image is
read, any model is built or anything is written. `training_data` / `evaluation_data`
then build the tf.data pipelines:

* CIFAR recipe: `nasnet_keras.data.pipeline` (whitening, pad-and-crop, flips; the same
  code the search uses), then cutout on each batch;
* ImageNet recipe: Inception-style random crops and flips for training, a central crop
  for evaluation, pixels in [-1, 1].

Labels become one-hot vectors (label smoothing needs them) and, for a model with the
auxiliary head, a dict feeding both outputs the same target.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from nasnet_keras import data
from nasnet_keras.data.catalog import get_spec
from nasnet_keras.checks import check_int
from nasnet_keras.data.sources import parse_split
from nasnet_keras.training.recipe_augment import central_crop, cutout, inception_crop, to_unit_range
from nasnet_keras.training.recipes import CifarRecipe, ImageNetRecipe, Recipe

SHUFFLE_BUFFER = 10_000  # small images: about the whole of CIFAR's training split, ~30 MB
# ImageNet examples are shuffled while still full-size decoded images (~0.4 MB each), so
# the buffer is smaller; TFDS stores the prepared examples in shuffled order already.
LARGE_IMAGE_SHUFFLE_BUFFER = 1_024


@dataclasses.dataclass(frozen=True)
class DataPlan:
    """The data side of a run, decided before anything is read."""

    dataset: str
    num_classes: int
    input_shape: tuple[int, int, int]  # what the model sees (H, W, C)
    source_channels: int  # channels of the stored images (grayscale is repeated for RGB models)
    train_split: str
    eval_split: str
    train_examples: int
    eval_examples: int
    data_dir: str | None = None
    manual_dir: str | None = None

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "train_split": self.train_split,
            "eval_split": self.eval_split,
        }


def _split_size(spec, recipe: Recipe, field: str) -> int:
    split = getattr(recipe, field)
    verb = "trains on" if field == "train_split" else "evaluates on"
    try:
        base, part = parse_split(split, spec)
    except ValueError as error:
        raise ValueError(
            f"The {recipe.name!r} recipe {verb} split {split!r}, which dataset {spec.name!r} cannot provide: "
            f"{error}. Choose another split with --set {field}=SPLIT"
        ) from None
    size = len(range(*part.indices(spec.splits[base])))
    if size == 0:
        raise ValueError(f"The {recipe.name!r} recipe {verb} split {split!r} of dataset {spec.name!r}, which is empty")
    return size


def plan_data(
    dataset: str,
    recipe: Recipe,
    *,
    default_image_size: int,
    image_size: int | None = None,
    channels: int | None = None,
    data_dir: str | None = None,
    manual_dir: str | None = None,
) -> DataPlan:
    """Classes, split sizes and the model's input shape for `dataset` under `recipe`.

    Image size, first that applies: `image_size`; the ImageNet recipe's `image_size`;
    the dataset's own size for the CIFAR recipe; the variant's size (`default_image_size`).
    `channels` forces the model's channel count (3 to fine-tune RGB weights on grayscale).
    """
    info = data.info(dataset)  # unknown names raise ValueError listing the known ones
    spec = get_spec(dataset)
    train_examples = _split_size(spec, recipe, "train_split")
    eval_examples = _split_size(spec, recipe, "eval_split")
    native_height, native_width, source_channels = info.image_shape
    if image_size is not None:
        check_int("image_size", image_size, minimum=1)
        size = (image_size, image_size)
    elif isinstance(recipe, ImageNetRecipe) and recipe.image_size is not None:
        size = (recipe.image_size, recipe.image_size)
    elif isinstance(recipe, CifarRecipe) and native_height is not None:
        size = (native_height, native_width)
    else:
        size = (default_image_size, default_image_size)
    model_channels = channels or source_channels
    if model_channels not in (source_channels, 3) or (model_channels == 3 and source_channels not in (1, 3)):
        raise ValueError(
            f"Cannot feed {source_channels}-channel images of {dataset!r} to a {model_channels}-channel model; "
            "accepted: the dataset's own channels, or 3 for grayscale data (repeated to RGB)"
        )
    return DataPlan(
        dataset=info.name,
        num_classes=info.num_classes,
        input_shape=(size[0], size[1], model_channels),
        source_channels=source_channels,
        train_split=recipe.train_split,
        eval_split=recipe.eval_split,
        train_examples=train_examples,
        eval_examples=eval_examples,
        data_dir=data_dir,
        manual_dir=manual_dir,
    )


def load_splits(plan: DataPlan) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """The raw (uint8 image, label) training and evaluation examples.

    Called before anything is built or written, so missing data (ImageNet without its
    manual download, say) is reported with `nasnet_keras.data`'s how-to-get-it message
    while the run directory is still untouched.
    """
    return _load(plan, plan.train_split), _load(plan, plan.eval_split)


def _load(plan: DataPlan, split: str) -> tf.data.Dataset:
    ds = data.load(plan.dataset, split, plan.data_dir, manual_dir=plan.manual_dir)
    if plan.input_shape[2] == 3 and plan.source_channels == 1:
        ds = ds.map(lambda image, label: (tf.image.grayscale_to_rgb(image), label))
    return ds


def _targets(num_classes: int, output_names: list[str]):
    def targets(images, labels):
        one_hot = tf.one_hot(labels, num_classes, dtype=tf.float32)
        if len(output_names) == 1:
            return images, one_hot
        return images, {name: one_hot for name in output_names}

    return targets


def training_data(examples: tf.data.Dataset, plan: DataPlan, recipe: Recipe, output_names: list[str],
                  seed: int) -> tf.data.Dataset:
    """An endless stream of augmented training batches (full batches only) from `load_splits`' examples."""
    ds = examples
    size = plan.input_shape[:2]
    autotune = tf.data.AUTOTUNE
    if isinstance(recipe, ImageNetRecipe):

        def augment(image, label):
            image = inception_crop(
                image,
                size[0],
                min_object_covered=recipe.crop_min_object_covered,
                aspect_ratio_range=recipe.crop_aspect_ratio_range,
                area_range=recipe.crop_area_range,
                seed=seed,
            )
            if recipe.flip:
                image = tf.image.random_flip_left_right(image, seed=seed)
            return to_unit_range(image), label

        ds = ds.shuffle(LARGE_IMAGE_SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True).repeat()
        ds = ds.map(augment, num_parallel_calls=autotune).batch(recipe.batch_size, drop_remainder=True)
    else:
        pad = recipe.pad if isinstance(recipe, CifarRecipe) else 0
        ds = data.pipeline(
            ds, recipe.batch_size, training=True, image_size=size, pad=pad, flip=recipe.flip,
            shuffle_buffer=SHUFFLE_BUFFER, seed=seed, drop_remainder=True,
        ).repeat()
        cutout_size = recipe.cutout_size if isinstance(recipe, CifarRecipe) else 0
        if cutout_size:
            ds = ds.map(lambda images, labels: (cutout(images, cutout_size, seed=seed), labels),
                        num_parallel_calls=autotune)
    return ds.map(_targets(plan.num_classes, output_names), num_parallel_calls=autotune).prefetch(autotune)


def evaluation_data(examples: tf.data.Dataset, plan: DataPlan, recipe: Recipe, output_names: list[str],
                    batch_size: int | None = None):
    """The evaluation examples, preprocessed as the recipe evaluates (no randomness), each once."""
    ds = examples
    batch_size = batch_size or recipe.batch_size
    size = plan.input_shape[:2]
    autotune = tf.data.AUTOTUNE
    if isinstance(recipe, ImageNetRecipe):
        ds = ds.map(lambda image, label: (to_unit_range(central_crop(image, size[0], recipe.eval_central_fraction)),
                                          label), num_parallel_calls=autotune).batch(batch_size)
    else:
        ds = data.pipeline(ds, batch_size, training=False, image_size=size)
    return ds.map(_targets(plan.num_classes, output_names), num_parallel_calls=autotune).prefetch(autotune)
