"""Annotations -> COCO -> Model Garden TFRecords: converters, and the bad-input rules of coco.check.

Rules (savedmodels/detection/coco.py): a bad box (zero area, outside the image) is a logged
and counted skip; a missing image, an unknown category, an unknown image id, a file that is
not COCO JSON / Pascal VOC XML is an error and nothing is written.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest
from PIL import Image


def _image(directory, name, size=(40, 30)):
    os.makedirs(directory, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(os.path.join(directory, name))


def _coco(boxes, images=(("a.jpg", 40, 30),), categories=((1, "tree"),)):
    return {
        "images": [{"id": i, "file_name": n, "width": w, "height": h} for i, (n, w, h) in enumerate(images, 1)],
        "annotations": [{"id": i, "image_id": image_id, "category_id": c, "bbox": list(b), "area": 0, "iscrowd": 0}
                        for i, (image_id, c, b) in enumerate(boxes, 1)],
        "categories": [{"id": i, "name": n} for i, n in categories],
    }


def _records(pattern):
    import tensorflow as tf

    examples = []
    for raw in tf.data.TFRecordDataset(tf.io.gfile.glob(pattern)):
        example = tf.train.Example.FromString(raw.numpy())
        feature = example.features.feature
        examples.append({key: list(feature[key].float_list.value or feature[key].int64_list.value)
                         for key in ("image/object/bbox/xmin", "image/object/bbox/ymax", "image/object/class/label")})
    return examples


def test_bad_boxes_are_logged_and_counted_skips(tmp_path, caplog):
    from savedmodels.detection import records

    images = str(tmp_path / "images")
    _image(images, "a.jpg")
    coco = _coco([(1, 1, (4, 3, 10, 6)),       # good: x 4..14 of 40, y 3..9 of 30
                  (1, 1, (35, 5, 10, 5)),      # right edge at 45 > 40: outside
                  (1, 1, (-2, 5, 5, 5)),       # negative x (Model Garden itself would keep it)
                  (1, 1, (5, 5, 0, 5))])       # zero width
    with caplog.at_level(logging.WARNING):
        card = records.write_dataset(str(tmp_path / "data"), {"train": (coco, images)})
    split = card["splits"]["train"]
    assert split["boxes"] == 1 and split["skipped_boxes"] == 3
    assert sorted(s["annotation_id"] for s in split["skipped"]) == [2, 3, 4]
    assert sum("skipping box" in r.message for r in caplog.records) == 3
    with open(tmp_path / "data" / "dataset.json") as f:
        assert json.load(f)["splits"]["train"]["skipped_boxes"] == 3
    (example,) = _records(str(tmp_path / "data" / "train-*.tfrecord"))
    np.testing.assert_allclose(example["image/object/bbox/xmin"], [0.1])
    np.testing.assert_allclose(example["image/object/bbox/ymax"], [0.3])
    assert example["image/object/class/label"] == [1]
    assert card["num_classes"] == 2  # background + tree

    with pytest.raises(ValueError, match="already exists; pass --overwrite"):
        records.write_dataset(str(tmp_path / "data"), {"train": (coco, images)})


@pytest.mark.parametrize("case, message", [
    ("missing_image", r"Image file not found: .*b\.jpg"),
    ("unknown_category", r"unknown category_id=7\. Known category ids: \[1\]"),
    ("unknown_image", r"refers to image_id=9, which is not in `images`"),
    ("wrong_size", r"is 40x30 but its annotation says 50x30"),
])
def test_bad_coco_files_are_errors_and_write_nothing(tmp_path, case, message):
    from savedmodels.detection import records

    images = str(tmp_path / "images")
    _image(images, "a.jpg")
    coco = {
        "missing_image": _coco([(2, 1, (1, 1, 5, 5))], images=(("a.jpg", 40, 30), ("b.jpg", 40, 30))),
        "unknown_category": _coco([(1, 7, (1, 1, 5, 5))]),
        "unknown_image": _coco([(9, 1, (1, 1, 5, 5))]),
        "wrong_size": _coco([(1, 1, (1, 1, 5, 5))], images=(("a.jpg", 50, 30),)),
    }[case]
    with pytest.raises(ValueError, match=message):
        records.write_dataset(str(tmp_path / "data"), {"train": (coco, images)})
    assert not os.path.exists(tmp_path / "data") and os.listdir(tmp_path) == ["images"]


def test_voc_and_csv_convert_to_the_same_coco(tmp_path):
    from savedmodels.detection import coco as coco_lib

    images = str(tmp_path)
    _image(images, "a.png")
    (tmp_path / "a.xml").write_text(
        "<annotation><filename>a.png</filename><size><width>40</width><height>30</height><depth>3</depth></size>"
        "<object><name>Tree</name><bndbox><xmin>4</xmin><ymin>3</ymin><xmax>14</xmax><ymax>9</ymax></bndbox></object>"
        "<object><name>Dead</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object>"
        "</annotation>")
    (tmp_path / "a.csv").write_text("image_path,xmin,ymin,xmax,ymax,label\na.png,4,3,14,9,Tree\na.png,1,1,2,2,Dead\n")
    voc = coco_lib.voc_to_coco([str(tmp_path / "a.xml")])
    csv = coco_lib.csv_to_coco(str(tmp_path / "a.csv"), images)
    assert voc == csv
    assert voc["categories"] == [{"id": 1, "name": "Dead", "supercategory": "none"},
                                 {"id": 2, "name": "Tree", "supercategory": "none"}]
    assert voc["annotations"][0]["bbox"] == [4.0, 3.0, 10.0, 6.0] and voc["annotations"][0]["category_id"] == 2
    clean, report = coco_lib.check(voc, images)
    assert report.boxes == 2 and not report.skipped


def test_non_xml_voc_and_bad_csv_are_errors(tmp_path):
    from savedmodels.detection import coco as coco_lib

    (tmp_path / "a.xml").write_text("image_path,xmin\nnot xml at all")
    with pytest.raises(ValueError, match=r"a\.xml is not a Pascal VOC XML file"):
        coco_lib.voc_to_coco([str(tmp_path / "a.xml")])
    (tmp_path / "b.xml").write_text("<svg></svg>")
    with pytest.raises(ValueError, match=r"root element is <svg>, expected <annotation>"):
        coco_lib.voc_to_coco([str(tmp_path / "b.xml")])
    (tmp_path / "c.csv").write_text("file,x0\na.png,1\n")
    with pytest.raises(ValueError, match=r"must have the header image_path,xmin,ymin,xmax,ymax,label"):
        coco_lib.csv_to_coco(str(tmp_path / "c.csv"), str(tmp_path))
    (tmp_path / "d.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"d\.json is not a COCO JSON file"):
        coco_lib.load(str(tmp_path / "d.json"))


def test_cli_data_writes_a_dataset_from_voc(tmp_path, capsys):
    from nasnet_keras import cli

    images = str(tmp_path / "images")
    _image(images, "a.jpg")
    _image(images, "b.jpg")
    for name in ("a", "b"):
        (tmp_path / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.jpg</filename><size><width>40</width><height>30</height></size>"
            "<object><name>Tree</name><bndbox><xmin>4</xmin><ymin>3</ymin><xmax>14</xmax><ymax>9</ymax></bndbox>"
            "</object></annotation>")
    out = str(tmp_path / "data")
    assert cli.main(["detect", "data", "--train", str(tmp_path / "a.xml"), "--validation", str(tmp_path / "b.xml"),
                     "--images", images, "--out", out]) == 0
    assert "train: 1 images, 1 boxes, 0 boxes skipped" in capsys.readouterr().out
    assert sorted(os.listdir(out)) == ["dataset.json", "train-00000-of-00001.tfrecord", "train.json",
                                       "validation-00000-of-00001.tfrecord", "validation.json"]
    assert cli.main(["detect", "data", "--train", str(tmp_path / "a.xml"), "--images", images, "--out", out]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
