"""COCO-format annotations: Pascal VOC XML and CSV converters, and the checks before records.

COCO JSON (`images`, `annotations` with `bbox` = [x, y, width, height] in pixels,
`categories`) is the one format the rest of the pipeline reads. `voc_to_coco` and
`csv_to_coco` (columns `image_path,xmin,ymin,xmax,ymax,label`, DeepForest's layout)
produce it; category ids are 1..K in sorted name order (0 is Model Garden's background).

`check(coco, image_dir)` decides what reaches the TFRecords. Its rules:

* errors (nothing is written): a file that is not JSON / not Pascal VOC XML, a missing
  image file, an image that `tf.io.decode_image` cannot read (e.g. TIFF), an image whose real size differs from the size recorded, an annotation whose
  `category_id` is not in `categories` or whose `image_id` is not in `images`, a malformed
  `bbox`;
* logged and counted skips (the box is left out, the image kept): a box of zero or
  negative width/height, or one that reaches outside the image. Model Garden's
  `create_coco_tf_record` skips the same boxes but misses negative coordinates, which it
  would turn into negative normalised coordinates; here they are skipped too.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import xml.etree.ElementTree as ElementTree

from PIL import Image

log = logging.getLogger(__name__)

DECODABLE = ("JPEG", "PNG", "GIF", "BMP")
CSV_COLUMNS = ("image_path", "xmin", "ymin", "xmax", "ymax", "label")


@dataclasses.dataclass
class CheckReport:
    images: int
    boxes: int  # boxes kept
    skipped: list  # [{"annotation_id", "image", "bbox", "reason"}]

    def as_dict(self) -> dict:
        return {"images": self.images, "boxes": self.boxes, "skipped_boxes": len(self.skipped),
                "skipped": self.skipped}


def load(path: str) -> dict:
    """Read a COCO JSON file, with an error naming the file if it is not one."""
    if not os.path.isfile(path):
        raise ValueError(f"Annotation file not found: {path!r}")
    try:
        with open(path, encoding="utf-8") as f:
            coco = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a COCO JSON file: {error}") from None
    missing = [key for key in ("images", "annotations", "categories") if key not in coco]
    if not isinstance(coco, dict) or missing:
        raise ValueError(f"{path} is not a COCO annotation file: it lacks {missing or 'a top-level object'}")
    return coco


def _categories(names) -> list[dict]:
    return [{"id": index, "name": name, "supercategory": "none"} for index, name in enumerate(sorted(set(names)), 1)]


def _coco(images, boxes, category_names=None) -> dict:
    """images: [(file_name, width, height)]; boxes: [(file_name, xmin, ymin, xmax, ymax, label)]."""
    categories = _categories(category_names or [box[5] for box in boxes])
    ids = {c["name"]: c["id"] for c in categories}
    image_ids = {}
    coco = {"images": [], "annotations": [], "categories": categories}
    for file_name, width, height in images:
        image_ids[file_name] = len(image_ids) + 1
        coco["images"].append({"id": image_ids[file_name], "file_name": file_name, "width": int(width),
                               "height": int(height)})
    for file_name, xmin, ymin, xmax, ymax, label in boxes:
        if label not in ids:
            raise ValueError(f"Unknown label {label!r} for a box in {file_name!r}. Known labels: {sorted(ids)}")
        width, height = xmax - xmin, ymax - ymin
        coco["annotations"].append({
            "id": len(coco["annotations"]) + 1, "image_id": image_ids[file_name], "category_id": ids[label],
            "bbox": [float(xmin), float(ymin), float(width), float(height)], "area": float(width * height),
            "iscrowd": 0,
        })
    return coco


def voc_to_coco(xml_paths, category_names=None) -> dict:
    """Pascal VOC XML files (one per image) -> COCO dict; `file_name` is the XML's <filename>."""
    images, boxes = [], []
    for path in xml_paths:
        try:
            root = ElementTree.parse(path).getroot()
        except ElementTree.ParseError as error:
            raise ValueError(f"{path} is not a Pascal VOC XML file: {error}") from None
        if root.tag != "annotation":
            raise ValueError(f"{path} is not a Pascal VOC XML file: its root element is <{root.tag}>, "
                             "expected <annotation>")
        file_name = _text(root, "filename", path)
        size = root.find("size")
        if size is None:
            raise ValueError(f"{path}: Pascal VOC file without <size>")
        images.append((file_name, _number(size, "width", path), _number(size, "height", path)))
        for obj in root.iter("object"):
            box = obj.find("bndbox")
            if box is None:
                raise ValueError(f"{path}: <object> without <bndbox>")
            boxes.append((file_name, *(_number(box, key, path) for key in ("xmin", "ymin", "xmax", "ymax")),
                          _text(obj, "name", path)))
    return _coco(images, boxes, category_names)


def csv_to_coco(csv_path: str, image_dir: str, category_names=None) -> dict:
    """A CSV of boxes (`image_path,xmin,ymin,xmax,ymax,label`, pixels) -> COCO dict.

    Image sizes are read from the image files (relative to `image_dir`), so they must exist.
    """
    with open(csv_path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or any(column not in reader.fieldnames for column in CSV_COLUMNS):
            raise ValueError(f"{csv_path} must have the header {','.join(CSV_COLUMNS)}. "
                             f"Received: {reader.fieldnames}")
        rows = list(reader)
    images, boxes, seen = [], [], set()
    for line, row in enumerate(rows, 2):
        name = row["image_path"]
        if name not in seen:
            seen.add(name)
            images.append((name, *_image_size(os.path.join(image_dir, name))))
        try:
            coords = [float(row[key]) for key in ("xmin", "ymin", "xmax", "ymax")]
        except ValueError:
            raise ValueError(f"{csv_path}:{line}: box coordinates must be numbers. Received: {row}") from None
        boxes.append((name, *coords, row["label"]))
    return _coco(images, boxes, category_names)


def check(coco: dict, image_dir: str) -> tuple[dict, CheckReport]:
    """Validate `coco` against the images in `image_dir`; returns (clean copy, report). See module doc."""
    category_ids = {c["id"] for c in coco["categories"]}
    images = {}
    for image in coco["images"]:
        path = os.path.join(image_dir, image["file_name"])
        if not os.path.isfile(path):
            raise ValueError(f"Image file not found: {path!r} (images[id={image['id']}].file_name="
                             f"{image['file_name']!r}, looked up in {image_dir!r})")
        width, height, kind = _image_size(path, with_format=True)
        if kind not in DECODABLE:
            raise ValueError(f"{path} is a {kind} image; the detector's input pipeline (tf.io.decode_image) "
                             f"reads {', '.join(DECODABLE)}. Convert it first")
        if (width, height) != (image["width"], image["height"]):
            raise ValueError(f"{path} is {width}x{height} but its annotation says "
                             f"{image['width']}x{image['height']} (images[id={image['id']}])")
        images[image["id"]] = image
    kept, skipped = [], []
    for annotation in coco["annotations"]:
        if annotation.get("category_id") not in category_ids:
            raise ValueError(f"Annotation id={annotation.get('id')} has unknown category_id="
                             f"{annotation.get('category_id')!r}. Known category ids: {sorted(category_ids)}")
        image = images.get(annotation.get("image_id"))
        if image is None:
            raise ValueError(f"Annotation id={annotation.get('id')} refers to image_id={annotation.get('image_id')!r}, "
                             "which is not in `images`")
        bbox = annotation.get("bbox")
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
            raise ValueError(f"Annotation id={annotation.get('id')}: bbox must be [x, y, width, height]. "
                             f"Received: bbox={bbox!r}")
        x, y, w, h = (float(v) for v in bbox)
        reason = None
        if w <= 0 or h <= 0:
            reason = "zero or negative area"
        elif x < 0 or y < 0 or x + w > image["width"] or y + h > image["height"]:
            reason = f"outside the {image['width']}x{image['height']} image"
        if reason:
            log.warning("skipping box of annotation id=%s in %s: bbox=%s, %s", annotation.get("id"),
                        image["file_name"], bbox, reason)
            skipped.append({"annotation_id": annotation.get("id"), "image": image["file_name"], "bbox": bbox,
                            "reason": reason})
            continue
        kept.append({**annotation, "area": float(annotation.get("area") or w * h), "iscrowd": annotation.get("iscrowd", 0)})
    clean = {**coco, "annotations": kept}
    return clean, CheckReport(images=len(images), boxes=len(kept), skipped=skipped)


def _image_size(path, with_format=False):
    try:
        with Image.open(path) as image:
            return (*image.size, image.format) if with_format else image.size
    except FileNotFoundError:
        raise ValueError(f"Image file not found: {path!r}") from None
    except OSError as error:
        raise ValueError(f"{path} is not a readable image: {error}") from None


def _text(element, tag, path):
    child = element.find(tag)
    if child is None or not (child.text or "").strip():
        raise ValueError(f"{path}: Pascal VOC <{element.tag}> without <{tag}>")
    return child.text.strip()


def _number(element, tag, path):
    text = _text(element, tag, path)
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{path}: <{tag}> must be a number. Received: {text!r}") from None


def load_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)
