"""Cutout masks exactly its square; Inception crops obey their area/aspect limits; pipelines wire them."""

import numpy as np
import pytest
import tensorflow as tf

from nasnet_keras.training import CifarRecipe, ImageNetRecipe, central_crop, cutout, cutout_mask, inception_crop
from nasnet_keras.training.recipe_augment import to_unit_range
from nasnet_keras.training.inputs import evaluation_data, load_splits, plan_data, training_data


def zero_box(mask2d):
    """(top, left, height, width) of the zeros of a 2-D mask, asserting they form one rectangle."""
    rows, cols = np.nonzero(mask2d == 0)
    top, left = rows.min(), cols.min()
    height, width = rows.max() - top + 1, cols.max() - left + 1
    assert len(rows) == height * width, "the masked pixels are not a filled rectangle"
    return top, left, height, width


def test_cutout_mask_is_the_square_around_the_centre_clipped_to_the_image():
    masks = cutout_mask(16, 16, 4, centers_y=[8, 0, 15, 5], centers_x=[8, 0, 3, 15]).numpy()[..., 0]
    assert masks.shape == (4, 16, 16)
    assert zero_box(masks[0]) == (6, 6, 4, 4)  # rows/cols [c - 2, c + 2)
    assert zero_box(masks[1]) == (0, 0, 2, 2)  # top-left corner: only the inside quarter
    assert zero_box(masks[2]) == (13, 1, 3, 4)  # hangs over the bottom edge
    assert zero_box(masks[3]) == (3, 13, 4, 3)  # hangs over the right edge
    assert set(np.unique(masks)) == {0.0, 1.0}
    odd = cutout_mask(9, 9, 3, [4], [4]).numpy()[0, ..., 0]
    assert zero_box(odd) == (3, 3, 3, 3)


def test_cutout_zeroes_one_square_per_image_and_leaves_the_rest():
    images = tf.random.uniform((64, 32, 32, 3), 1.0, 2.0, seed=1)  # no zeros to begin with
    out = cutout(images, 16, seed=3).numpy()
    centres = set()
    for original, masked in zip(images.numpy(), out):
        zeros = np.all(masked == 0, axis=-1)
        top, left, height, width = zero_box(np.where(zeros, 0, 1))
        assert 8 <= height <= 16 and 8 <= width <= 16  # centre inside the image: at least a quarter
        assert (height == 16 or top == 0 or top + height == 32) and (width == 16 or left == 0 or left + width == 32)
        np.testing.assert_array_equal(masked[~zeros], original[~zeros])
        centres.add((top, left))
    assert len(centres) > 40  # one independent centre per image
    assert cutout(images, 0) is images
    with pytest.raises(ValueError, match="`size` must be an integer >= 0.*Received: size=-1"):
        cutout(images, -1)


def coordinate_image(height, width):
    """Pixel (y, x) holds (y, x, 0): after a crop and resize, the values say where the crop was."""
    y, x = np.meshgrid(np.arange(height, dtype=np.float32), np.arange(width, dtype=np.float32), indexing="ij")
    return tf.constant(np.stack([y, x, np.zeros_like(y)], axis=-1))


def test_inception_crops_cover_5_to_100_percent_with_aspect_3_4_to_4_3():
    image = coordinate_image(300, 400)
    areas = []
    for seed in range(1, 41):
        crop = inception_crop(image, 32, seed=seed).numpy()
        assert crop.shape == (32, 32, 3) and crop.dtype == np.float32
        height = crop[..., 0].max() - crop[..., 0].min() + 1
        width = crop[..., 1].max() - crop[..., 1].min() + 1
        area = height * width / (300 * 400)
        areas.append(area)
        assert 0.04 <= area <= 1.0 + 1e-6
        if area < 0.999:  # the fallback (whole image) keeps the image's own aspect ratio
            assert 0.70 <= width / height <= 1.40
    assert min(areas) < 0.5 < max(areas)  # a spread of scales, not one fixed crop
    whole = inception_crop(image, 32, area_range=(1.0, 1.0), aspect_ratio_range=(4 / 3, 4 / 3), seed=5)
    np.testing.assert_allclose(whole.numpy(), tf.image.resize(image, (32, 32)).numpy(), atol=1e-3)


def test_evaluation_uses_the_central_87_5_percent_and_unit_range():
    crop = central_crop(coordinate_image(200, 200), 176).numpy()  # 87.5% of 200 = 176: no resampling
    assert crop.shape == (176, 176, 3)
    assert (crop[..., 0].min(), crop[..., 0].max(), crop[..., 1].min(), crop[..., 1].max()) == (12, 187, 12, 187)
    assert central_crop(coordinate_image(200, 200), 50).shape == (50, 50, 3)
    np.testing.assert_allclose(to_unit_range(tf.constant([0, 127.5, 255.0])).numpy(), [-1, 0, 1])


def test_cifar_pipeline_whitens_and_cuts_out():
    # pad=0: the zero padding of pad-and-crop would also put exact zeros on the borders.
    recipe = CifarRecipe(batch_size=8, cutout_size=6, pad=0, train_split="train[:64]", eval_split="test[:20]")
    plan = plan_data("fashion_mnist", recipe, default_image_size=32)
    assert plan.input_shape == (28, 28, 1) and (plan.train_examples, plan.eval_examples) == (64, 20)
    train_examples, eval_examples = load_splits(plan)
    images, targets = next(iter(training_data(train_examples, plan, recipe, ["predictions", "aux_predictions"], 0)))
    assert images.shape == (8, 28, 28, 1)
    assert set(targets) == {"predictions", "aux_predictions"}
    np.testing.assert_array_equal(targets["predictions"].numpy(), targets["aux_predictions"].numpy())
    assert targets["predictions"].shape == (8, 10) and np.all(targets["predictions"].numpy().sum(-1) == 1)
    for image in images.numpy()[..., 0]:
        _, _, height, width = zero_box(np.where(image == 0, 0, 1))  # whitened pixels are never exactly 0
        assert 3 <= height <= 6 and 3 <= width <= 6
    batches = list(evaluation_data(eval_examples, plan, recipe, ["predictions"], batch_size=8))
    assert [b[0].shape[0] for b in batches] == [8, 8, 4]  # every test image once, no drop
    assert batches[0][1].shape == (8, 10)
    for image in batches[0][0].numpy():
        assert abs(image.mean()) < 1e-4 and np.sum(image == 0) < 9  # whitened, no cutout


def test_imagenet_pipeline_crops_to_the_model_size_in_unit_range_rgb():
    recipe = ImageNetRecipe(batch_size=4, train_split="train[:16]", eval_split="test[:8]")
    plan = plan_data("fashion_mnist", recipe, default_image_size=224, image_size=40, channels=3)
    assert plan.input_shape == (40, 40, 3) and plan.source_channels == 1
    train_examples, eval_examples = load_splits(plan)
    images, targets = next(iter(training_data(train_examples, plan, recipe, ["predictions"], seed=0)))
    assert images.shape == (4, 40, 40, 3) and targets.shape == (4, 10)
    values = images.numpy()
    assert values.min() >= -1.0 and values.max() <= 1.0
    np.testing.assert_array_equal(values[..., 0], values[..., 2])  # grayscale repeated to RGB
    images, _ = next(iter(evaluation_data(eval_examples, plan, recipe, ["predictions"])))
    assert images.shape == (4, 40, 40, 3)
