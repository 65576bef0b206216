"""Boxes, labels and scores drawn on an image, saved as PNG (what `nasnet detect predict` writes)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from nasnet_keras import fileio

COLORS = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180))


def draw(image: np.ndarray, boxes, scores, classes, names: dict, *, min_score: float = 0.3,
         truth=None) -> Image.Image:
    """RGB uint8 image + detections (boxes [ymin, xmin, ymax, xmax] in pixels) -> PIL image.

    `truth` (optional, same box layout) is drawn in thin white first, so a picture of
    validation images shows what the detector missed.
    """
    picture = Image.fromarray(np.asarray(image, np.uint8)).convert("RGB")
    pen = ImageDraw.Draw(picture)
    font = ImageFont.load_default()
    for ymin, xmin, ymax, xmax in truth if truth is not None else ():
        pen.rectangle((xmin, ymin, xmax, ymax), outline=(255, 255, 255), width=1)
    for (ymin, xmin, ymax, xmax), score, cls in zip(boxes, scores, classes):
        if score < min_score:
            continue
        color = COLORS[int(cls) % len(COLORS)]
        pen.rectangle((xmin, ymin, xmax, ymax), outline=color, width=2)
        label = f"{names.get(int(cls), int(cls))} {score:.2f}"
        left, top, right, bottom = pen.textbbox((xmin, ymin), label, font=font)
        y = max(0, ymin - (bottom - top) - 2)
        pen.rectangle((xmin, y, xmin + right - left + 2, y + bottom - top + 2), fill=color)
        pen.text((xmin + 1, y), label, fill=(0, 0, 0), font=font)
    return picture


def save_png(picture: Image.Image, path: str) -> None:
    with fileio.atomic_path(path) as temporary:
        picture.save(temporary, format="PNG")
