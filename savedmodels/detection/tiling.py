"""Cut large annotated photos into small square tiles with their boxes (COCO in, COCO out).

Aerial photos such as DeepForest's (400x400 to 2299x2472 pixels, trees 20-60 pixels wide)
are far larger than a CPU detector's input; tiles keep the trees' pixel size. Tiles are
laid on a grid whose last row and column are moved in to end at the image border (so
every pixel is covered and every tile is full size). A box cut by a tile border is clipped
to the tile and kept when at least `min_visible` of its area is inside; tiles are JPEG.
"""

from __future__ import annotations

import os

from PIL import Image

from nasnet_keras import checks


def _starts(length: int, tile: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, tile))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def tile(coco: dict, image_dir: str, out_dir: str, tile_size: int, *, min_visible: float = 0.5,
         keep_empty: bool = False) -> dict:
    """Write tiles of every image to `out_dir`; returns their COCO dict (same categories)."""
    checks.check_int("tile_size", tile_size, minimum=16)
    checks.check_number("min_visible", min_visible, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    os.makedirs(out_dir, exist_ok=True)
    by_image = {}
    for annotation in coco["annotations"]:
        by_image.setdefault(annotation["image_id"], []).append(annotation)
    result = {"images": [], "annotations": [], "categories": coco["categories"]}
    for image in coco["images"]:
        path = os.path.join(image_dir, image["file_name"])
        with Image.open(path) as opened:
            photo = opened.convert("RGB")
        width, height = photo.size
        stem = os.path.splitext(os.path.basename(image["file_name"]))[0]
        for top in _starts(height, tile_size):
            for left in _starts(width, tile_size):
                right, bottom = min(left + tile_size, width), min(top + tile_size, height)
                boxes = []
                for annotation in by_image.get(image["id"], []):
                    x, y, w, h = annotation["bbox"]
                    if w <= 0 or h <= 0:
                        continue
                    x0, y0 = max(x, left), max(y, top)
                    x1, y1 = min(x + w, right), min(y + h, bottom)
                    if x1 <= x0 or y1 <= y0 or (x1 - x0) * (y1 - y0) < min_visible * w * h:
                        continue
                    boxes.append((annotation["category_id"], [x0 - left, y0 - top, x1 - x0, y1 - y0]))
                if not boxes and not keep_empty:
                    continue
                name = f"{stem}_y{top}_x{left}.jpg"
                photo.crop((left, top, right, bottom)).save(os.path.join(out_dir, name), quality=95)
                image_id = len(result["images"]) + 1
                result["images"].append({"id": image_id, "file_name": name, "width": right - left,
                                         "height": bottom - top, "source": image["file_name"]})
                for category_id, bbox in boxes:
                    result["annotations"].append({
                        "id": len(result["annotations"]) + 1, "image_id": image_id, "category_id": category_id,
                        "bbox": [float(v) for v in bbox], "area": float(bbox[2] * bbox[3]), "iscrowd": 0})
    return result
