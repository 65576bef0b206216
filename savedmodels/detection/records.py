"""COCO JSON + images -> Model Garden TFRecords, through Model Garden's `create_coco_tf_record`.

The records are written by `official/vision/data/create_coco_tf_record.py`'s own functions
(`_load_object_annotations`, `generate_annotations`, `create_tf_example`) and
`tfrecord_lib.write_tf_record_dataset`: the same code as its command-line `main`, minus the
absl flags (which a library cannot parse). `coco.check` runs first (see its rules), so
every box that reaches `create_tf_example` is one it keeps.

A dataset directory (what `nasnet detect train --data` reads):

    DATA/train-00000-of-00001.tfrecord   DATA/train.json        (the checked COCO annotations)
    DATA/validation-00000-of-00001.tfrecord   DATA/validation.json
    DATA/dataset.json   categories, num_classes, per split: images, boxes, skipped boxes

It appears complete or not at all (`nasnet_keras.fileio.atomic_directory`).
"""

from __future__ import annotations

import glob
import logging
import os

from official.vision.data import create_coco_tf_record as mg
from official.vision.data import tfrecord_lib

from nasnet_keras import fileio
from savedmodels.detection import coco as coco_lib

log = logging.getLogger(__name__)

SPLITS = ("train", "validation")
DATASET_CARD = "dataset.json"


def write_split(coco: dict, image_dir: str, output_prefix: str, num_shards: int = 1) -> coco_lib.CheckReport:
    """Check `coco`, then write `output_prefix-0000i-of-0000n.tfrecord` and `output_prefix.json`."""
    clean, report = coco_lib.check(coco, image_dir)
    annotations = output_prefix + ".json"
    fileio.write_json(annotations, clean)
    images = mg._load_images_info(annotations)
    img_to_obj_annotation, id_to_name_map = mg._load_object_annotations(annotations)
    examples = mg.generate_annotations(images=images, image_dirs=[image_dir],
                                       img_to_obj_annotation=img_to_obj_annotation, id_to_name_map=id_to_name_map)
    skipped = tfrecord_lib.write_tf_record_dataset(output_prefix, examples, mg.create_tf_example, num_shards,
                                                   multiple_processes=0)
    if skipped:  # coco.check removed every box Model Garden would skip
        raise AssertionError(f"create_coco_tf_record skipped {skipped} boxes that coco.check kept")
    log.info("%s: %d images, %d boxes, %d boxes skipped", output_prefix, report.images, report.boxes,
             len(report.skipped))
    return report


def write_dataset(directory: str, splits: dict, *, overwrite: bool = False, num_shards: int = 1) -> dict:
    """splits: {"train": (coco dict, image_dir), "validation": (...)} -> the dataset card."""
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown or "train" not in splits:
        raise ValueError(f"Splits must include 'train' and be among {SPLITS}. Received: {sorted(splits)}")
    categories = None
    for name, (coco, _) in splits.items():
        names = sorted((c["id"], c["name"]) for c in coco["categories"])
        if categories is not None and names != categories:
            raise ValueError(f"Split {name!r} has categories {names}, but the others have {categories}; "
                             "convert all splits with the same category list")
        categories = names
    card = {"categories": [{"id": i, "name": n} for i, n in categories],
            "num_classes": max(i for i, _ in categories) + 1, "splits": {}}
    try:
        with fileio.atomic_directory(directory, overwrite=overwrite) as partial:
            for name, (coco, image_dir) in splits.items():
                report = write_split(coco, image_dir, os.path.join(partial, name), num_shards=num_shards)
                card["splits"][name] = {k: v for k, v in report.as_dict().items() if k != "skipped"}
                card["splits"][name]["skipped"] = report.skipped
            fileio.write_json(os.path.join(partial, DATASET_CARD), card)
    except FileExistsError:
        raise ValueError(f"Dataset directory {directory!r} already exists; pass --overwrite to replace it") from None
    return card


def read_dataset(directory: str) -> dict:
    """The card of a dataset directory, with the record patterns added under `files`."""
    path = os.path.join(directory, DATASET_CARD)
    if not os.path.isfile(path):
        raise ValueError(f"{directory!r} is not a dataset directory (no {DATASET_CARD}); "
                         "write one with `nasnet detect data`")
    card = coco_lib.load_json(path)
    card["files"] = {}
    for split in card["splits"]:
        pattern = os.path.join(os.path.abspath(directory), f"{split}-*.tfrecord")
        if not glob.glob(pattern):
            raise ValueError(f"Dataset {directory!r} lists split {split!r} but has no {pattern}")
        card["files"][split] = pattern
    return card


def convert(path: str, image_dir: str, category_names=None) -> dict:
    """An annotation file or folder -> COCO dict: `.json` (COCO), `.csv`, `.xml` or a folder of `.xml` (VOC)."""
    if os.path.isdir(path):
        xml = sorted(glob.glob(os.path.join(path, "*.xml")))
        if not xml:
            raise ValueError(f"Folder {path!r} holds no Pascal VOC .xml files")
        return coco_lib.voc_to_coco(xml, category_names)
    if path.endswith(".json"):
        return coco_lib.load(path)
    if path.endswith(".csv"):
        return coco_lib.csv_to_coco(path, image_dir, category_names)
    if path.endswith(".xml"):
        return coco_lib.voc_to_coco([path], category_names)
    raise ValueError(f"Annotations must be a COCO .json, a .csv ({','.join(coco_lib.CSV_COLUMNS)}), "
                     f"a Pascal VOC .xml or a folder of them. Received: {path!r}")
