"""Faster R-CNN on DeepForest's tree crowns: NASNet-A Mobile (frozen / training BatchNorm) vs ResNet.

The same Model Garden detector (Faster R-CNN + FPN, `fasterrcnn_resnetfpn_coco`'s recipe
with the learning rate scaled to the batch), the same data, steps, batch and input size;
only the backbone differs. All start from random initialisation (no pretrained
checkpoint is available offline), so the AP after a short CPU run is small: the table
compares the backbones' early learning and speed, not final accuracy.

    python benchmarks/detection.py --steps 60 --loop 10 --val-tiles 8 --pictures 4   # what ran (below)
    python benchmarks/detection.py --steps 600 --input-size 256 --tile 256

Measured 2026-12-01 on the project's 2-core CPU shared with other jobs (load average 4-8
throughout, so images/s are low and only comparable within the run), 60 steps of batch 2 at
input 128, 8 validation tiles (115 boxes):

| backbone | COCO AP | AP50 | train images/s (median, min-max over loops) | backbone params | wall s |
|---|---|---|---|---|---|
| NASNet-A Mobile, frozen BN | 0.0000 | 0.0000 | 0.45 (0.33-0.47) | 4,269,716 | 409 |
| Model Garden ResNet-50 | 0.0000 | 0.0000 | 0.13 (0.10-0.20) | 23,561,152 | 959 |
| NASNet-A Mobile, training BN | 0.0000 | 0.0000 | 0.18 (0.16-0.20) | 4,269,716 | 801 |

120 images from random initialisation is far too little to detect anything: every row has
AP 0. The picture shows why frozen BatchNorm is a setting for *pretrained* backbones (the
TF1 Object Detection API's default assumes an ImageNet checkpoint): frozen at their initial
statistics (mean 0, variance 1) the layers do not normalise at all, and that detector gives
confident (0.85-0.89) full-height strips; the ResNet and training-BN detectors score no box
above 0.05. Training BN ran at 0.18 vs frozen BN's 0.45 images/s, but the load rose between
those rows (about 1-4 during the first, 5-7 during the third), so part of that gap is load.
No pretrained weights are reachable offline, so the AP comparison a user wants (fine-tuning
from ImageNet) needs, on a machine that has them, NASNet's Keras weights file
(`--set task.model.backbone.nasnet.weights=PATH`) and a ResNet checkpoint
(`--set task.init_checkpoint=PATH`).

Data: 256x256 tiles of the three training photos and, for validation, every tile of the
fourth photo (split by photo; see savedmodels/detection/treecrowns.py), resized to
`--input-size` by Model Garden's parser. Reported per backbone: COCO AP and AP50 on the
validation tiles (Model Garden's COCOEvaluator, pycocotools), training images/s (median
of orbit's per-loop steps/s after the first loop, which includes tracing, times the
batch), backbone parameters; `predictions.png` shows each model's boxes on validation
tiles (white: ground truth).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

NASNET = "fasterrcnn_nasnet_mobile_coco"
RESNET = "fasterrcnn_resnetfpn_coco"


def configs(args):
    resnet = {"task": {"model": {"backbone": {"type": "resnet", "resnet": {"model_id": args.resnet_depth}}}}}
    return [
        ("NASNet-A Mobile, frozen BN", NASNET, {"task": {"model": {"backbone": {"nasnet": {"frozen_batchnorm": True}}}}}),
        (f"Model Garden ResNet-{args.resnet_depth}", RESNET, resnet),
        ("NASNet-A Mobile, training BN", NASNET, {"task": {"model": {"backbone": {"nasnet": {"frozen_batchnorm": False}}}}}),
    ]


def steps_per_second(model_dir):
    import tensorflow as tf

    values = []
    for path in sorted(glob.glob(os.path.join(model_dir, "train", "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "steps_per_second":
                    values.append((event.step, float(tf.make_ndarray(value.tensor)) if value.HasField("tensor")
                                   else value.simple_value))
    values.sort()
    return [v for _, v in values[1:]] or [v for _, v in values]  # the first loop includes tracing


def backbone_params(model):
    return int(sum(np.prod(w.shape) for w in model.backbone.weights))


def validation_tiles(data_dir, count):
    """The `count` validation tiles with the most boxes: [(pixels, truth boxes [ymin, xmin, ymax, xmax])], names."""
    from PIL import Image

    with open(os.path.join(data_dir, "validation.json")) as f:
        coco = json.load(f)
    chosen = sorted(coco["images"], key=lambda image: -sum(a["image_id"] == image["id"] for a in coco["annotations"]))
    chosen = chosen[:count]
    tiles = []
    for image in chosen:
        with Image.open(os.path.join(data_dir + "_tiles", "validation", image["file_name"])) as opened:
            pixels = np.asarray(opened.convert("RGB"))
        truth = [[a["bbox"][1], a["bbox"][0], a["bbox"][1] + a["bbox"][3], a["bbox"][0] + a["bbox"][2]]
                 for a in coco["annotations"] if a["image_id"] == image["id"]]
        tiles.append((pixels, truth))
    return tiles, {c["id"]: c["name"] for c in coco["categories"]}


def predictions_row(params, model, tiles, names, min_score):
    """The trained model's boxes drawn on the tiles, through Model Garden's detection export module."""
    from savedmodels.detection import drawing, runner

    module = runner.detector_module(params, batch_size=1, model=model)
    drawn = []
    for pixels, truth in tiles:
        found = runner.detect(module, pixels)
        drawn.append(drawing.draw(pixels, found["boxes"], found["scores"], found["classes"], names,
                                  min_score=min_score, truth=truth))
    return drawn


def picture(rows, out):
    from PIL import Image, ImageDraw

    from savedmodels.detection import drawing

    size = rows[0][1][0].size[0]
    label_h = 16
    sheet = Image.new("RGB", (size * len(rows[0][1]), (size + label_h) * len(rows)), "white")
    pen = ImageDraw.Draw(sheet)
    for r, (label, drawn) in enumerate(rows):
        pen.text((4, r * (size + label_h) + 2), label, fill=(0, 0, 0))
        for c, image in enumerate(drawn):
            sheet.paste(image, (c * size, r * (size + label_h) + label_h))
    drawing.save_png(sheet, out)


def print_table(results, out):
    """The table so far (printed and written after every row, so an interrupted run keeps its rows)."""
    print()
    print("| backbone | COCO AP | AP50 | train images/s (median, min-max over loops) | backbone params | wall s |")
    print("|---|---|---|---|---|---|")
    for r in results:
        spread = f"{r['spread'][0]:.2f}-{r['spread'][1]:.2f}" if r["spread"] else "-"
        print(f"| {r['backbone']} | {r['AP']:.4f} | {r['AP50']:.4f} | {r['train_images_per_s']:.2f} ({spread}) | "
              f"{r['backbone_params']:,} | {r['wall_s']:.0f} |", flush=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--input-size", type=int, default=128)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--resnet-depth", type=int, default=50)
    parser.add_argument("--learning-rate", type=float, default=0.02)
    parser.add_argument("--only", type=int, nargs="*", default=None, help="indices of the rows to run")
    parser.add_argument("--out", default="runs/benchmark_detection")
    parser.add_argument("--pictures", type=int, default=4, help="validation tiles in predictions.png")
    parser.add_argument("--picture-rows", type=int, default=3, help="draw the predictions of the first N rows")
    parser.add_argument("--val-tiles", type=int, default=0, help="evaluate on the first N validation tiles (0: all)")
    parser.add_argument("--loop", type=int, default=10, help="steps per orbit loop (one images/s sample each)")
    parser.add_argument("--min-score", type=float, default=0.05, help="draw boxes scoring at least this")
    args = parser.parse_args(argv)

    import tf_keras

    from savedmodels.detection import runner, treecrowns

    os.makedirs(args.out, exist_ok=True)
    data_dir = os.path.join(args.out, f"trees_{args.tile}")
    if args.val_tiles:
        data_dir += f"_val{args.val_tiles}"
    if not os.path.exists(os.path.join(data_dir, "dataset.json")):
        treecrowns.prepare(data_dir, tile_size=args.tile,
                           max_tiles={"validation": args.val_tiles} if args.val_tiles else None)
    card = json.load(open(os.path.join(data_dir, "dataset.json")))
    print(f"data: {card['splits']['train']['images']} training tiles ({card['splits']['train']['boxes']} boxes), "
          f"{card['splits']['validation']['images']} validation tiles ({card['splits']['validation']['boxes']} boxes), "
          f"{args.tile}px tiles at input {args.input_size}; {args.steps} steps of batch {args.batch_size}, "
          f"learning rate {args.learning_rate}", flush=True)
    results, rows = [], []
    tiles, names = validation_tiles(data_dir, args.pictures) if args.pictures else (None, None)
    chosen = configs(args)
    for index, (label, experiment, overrides) in enumerate(chosen):
        if args.only is not None and index not in args.only:
            continue
        model_dir = tempfile.mkdtemp(prefix="run_", dir=args.out)
        params = runner.configure(experiment, data_dir, steps=args.steps, batch_size=args.batch_size,
                                  eval_batch_size=1, input_size=args.input_size, learning_rate=args.learning_rate,
                                  overrides=overrides)
        params.trainer.steps_per_loop = params.trainer.summary_interval = min(args.loop, args.steps)
        start = time.time()
        metrics, model = runner.train(params, experiment, model_dir, return_model=True)
        wall = time.time() - start
        rates = steps_per_second(model_dir)
        result = {"backbone": label, "AP": metrics.get("AP"), "AP50": metrics.get("AP50"),
                  "train_images_per_s": statistics.median(rates) * args.batch_size if rates else float("nan"),
                  "spread": [min(rates) * args.batch_size, max(rates) * args.batch_size] if rates else None,
                  "backbone_params": backbone_params(model), "wall_s": wall, "model_dir": model_dir}
        print(json.dumps(result), flush=True)
        results.append(result)
        print_table(results, args.out)
        if args.pictures and len(rows) < args.picture_rows:
            rows.append((f"{label}: AP50 {result['AP50']:.3f} (white: truth)",
                         predictions_row(params, model, tiles, names, args.min_score)))
            picture(rows, os.path.join(args.out, "predictions.png"))
        tf_keras.backend.clear_session()

    if rows:
        print(f"predictions: {os.path.join(args.out, 'predictions.png')}")


if __name__ == "__main__":
    main()
