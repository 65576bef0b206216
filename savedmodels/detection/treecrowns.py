"""DeepForest's tree-crown photos as a detection dataset (real data that works offline).

The `deepforest` 2.1.0 wheel ships, in `deepforest/data/`, four aerial RGB photos with
Pascal VOC boxes of tree crowns (951 boxes, one class "Tree"). `make data` unpacks that
folder into `.data/deepforest/` (the wheel is unzipped, never imported: its code needs
torch). `prepare` tiles the photos and splits them *by photo*: tiles of one photo are never
in both splits.
"""

from __future__ import annotations

import os

from savedmodels.detection import coco as coco_lib
from savedmodels.detection import records, tiling

ENV = "NASNET_DEEPFOREST_DIR"
REPO_DATA = os.path.join(os.path.dirname(__file__), "..", "..", ".data", "deepforest", "deepforest", "data")
VOC_FILES = ("2019_YELL_2_528000_4978000_image_crop2.xml", "OSBS_029.xml", "SOAP_061.xml",
             "2019_YELL_2_541000_4977000_image_crop.xml")
VALIDATION_PHOTOS = ("2019_YELL_2_541000_4977000_image_crop.png",)  # 1249x1035, 279 crowns


def data_dir() -> str:
    path = os.path.abspath(os.environ.get(ENV) or REPO_DATA)
    missing = [name for name in VOC_FILES if not os.path.isfile(os.path.join(path, name))]
    if missing:
        raise ValueError(f"DeepForest's data folder {path!r} lacks {missing}; run `make data` (it unpacks "
                         f"the deepforest==2.1.0 wheel into .data/) or set ${ENV}")
    return path


def split_by_photo(coco: dict, validation=VALIDATION_PHOTOS) -> dict:
    """{"train": coco, "validation": coco}: whole photos go to one split."""
    out = {}
    for name, keep in (("train", lambda f: f not in validation), ("validation", lambda f: f in validation)):
        images = [image for image in coco["images"] if keep(image["file_name"])]
        ids = {image["id"] for image in images}
        out[name] = {"images": images, "categories": coco["categories"],
                     "annotations": [a for a in coco["annotations"] if a["image_id"] in ids]}
    return out


def first(coco: dict, count: int) -> dict:
    """The first `count` images of `coco` with their boxes (for small test sets)."""
    images = coco["images"][:count]
    ids = {image["id"] for image in images}
    return {**coco, "images": images, "annotations": [a for a in coco["annotations"] if a["image_id"] in ids]}


def prepare(directory: str, *, tile_size: int = 256, max_tiles: dict | None = None, overwrite: bool = False) -> dict:
    """Tile the photos into `directory`/tiles and write the dataset (records, COCO JSON, card)."""
    source = data_dir()
    photos = coco_lib.voc_to_coco([os.path.join(source, name) for name in VOC_FILES])
    tiles_dir = os.path.join(os.path.abspath(directory) + "_tiles")
    splits = {}
    for name, coco in split_by_photo(photos).items():
        tiled = tiling.tile(coco, source, os.path.join(tiles_dir, name), tile_size)
        if max_tiles and name in max_tiles:
            tiled = first(tiled, max_tiles[name])
        splits[name] = (tiled, os.path.join(tiles_dir, name))
    return records.write_dataset(directory, splits, overwrite=overwrite)
