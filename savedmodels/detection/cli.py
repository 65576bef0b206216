"""`nasnet detect data|train|eval|predict|export`: Faster R-CNN with a NASNet backbone (Model Garden).

Heavy imports (TensorFlow, Model Garden) happen inside the commands, so `nasnet --help`
stays fast and works without the `detection` extra installed.
"""

from __future__ import annotations

import json
import os

from nasnet_keras.overrides import parse_overrides

EXPERIMENT = "fasterrcnn_nasnet_mobile_coco"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "detect", help="object detection: Faster R-CNN with a NASNet backbone, trained by TF Model Garden",
        description="Fine-tune and serve Faster R-CNN (Model Garden) on a NASNet backbone. See README, Detection.")
    commands = parser.add_subparsers(dest="detect_command", required=True)

    data = commands.add_parser("data", help="annotations + images -> Model Garden TFRecords (a dataset directory)")
    data.add_argument("--train", required=True,
                      help="training annotations: COCO .json, .csv (image_path,xmin,ymin,xmax,ymax,label), "
                           "Pascal VOC .xml or a folder of .xml")
    data.add_argument("--validation", default=None, help="validation annotations, same formats")
    data.add_argument("--images", required=True, help="folder of the image files the annotations name")
    data.add_argument("--out", required=True, help="dataset directory to write")
    data.add_argument("--shards", type=int, default=1, help="TFRecord files per split (default: 1)")
    data.add_argument("--overwrite", action="store_true", help="replace an existing dataset directory")
    data.set_defaults(func=run_data)

    train = commands.add_parser("train", help="train (or resume) with official.core.train_lib; COCO metrics at the end")
    train.add_argument("--experiment", default=EXPERIMENT,
                       help=f"a registered Model Garden experiment (default: {EXPERIMENT}; also "
                            "fasterrcnn_nasnet_large_coco, fasterrcnn_resnetfpn_coco)")
    train.add_argument("--data", required=True, help="dataset directory written by `nasnet detect data`")
    train.add_argument("--model-dir", required=True, help="checkpoints, summaries, run card; run again to resume")
    train.add_argument("--steps", type=int, default=1000, help="total training steps (default: 1000)")
    train.add_argument("--batch-size", type=int, default=2, help="training batch (default: 2)")
    train.add_argument("--eval-batch-size", type=int, default=1, help="evaluation batch (default: 1)")
    train.add_argument("--input-size", type=int, default=None,
                       help="square input size, a multiple of 64 (default: the experiment's: 640 mobile, 1216 large)")
    train.add_argument("--learning-rate", type=float, default=None,
                       help="peak learning rate (default: Model Garden's 0.12 scaled by batch / 64)")
    train.add_argument("--backbone", default=None,
                       help="a backbone SavedModel (nasnet export --backbone --frozen-batchnorm) instead of "
                            "exporting the experiment's variant")
    train.add_argument("--genotype", default=None, help="a searched genotype .json to build into the variant")
    train.add_argument("--training-batchnorm", action="store_true",
                       help="BatchNorm uses batch statistics in training (default: frozen moving statistics)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                       help="override any experiment field, e.g. --set task.model.rpn_head.num_convs=2 (repeatable)")
    train.add_argument("--no-eval", action="store_true", help="train only")
    train.set_defaults(func=run_train)

    evaluate = commands.add_parser("eval", help="COCO metrics (pycocotools) of the latest checkpoint")
    evaluate.add_argument("--model-dir", required=True)
    evaluate.add_argument("--data", default=None, help="dataset directory (default: the one the run trained with)")
    evaluate.add_argument("--experiment", default=None, help="accepted for symmetry; the run card names it")
    evaluate.set_defaults(func=run_eval)

    predict = commands.add_parser("predict", help="draw detected boxes, labels and scores on images (PNG)")
    predict.add_argument("images", nargs="+", help="image files (JPEG, PNG, ...)")
    predict.add_argument("--model-dir", required=True)
    predict.add_argument("--out", required=True, help="folder for IMAGE_NAME.png files and detections.json")
    predict.add_argument("--min-score", type=float, default=0.3, help="draw boxes scoring at least this (default 0.3)")
    predict.set_defaults(func=run_predict)

    export = commands.add_parser("export", help="TF Serving SavedModel of the whole detector (Model Garden's export)")
    export.add_argument("--model-dir", required=True)
    export.add_argument("--out", required=True, help="SavedModel directory, e.g. models/trees/1")
    export.add_argument("--overwrite", action="store_true", help="replace an existing export directory")
    export.set_defaults(func=run_export)


def _nested(overrides: dict) -> dict:
    nested: dict = {}
    for path, value in overrides.items():
        node = nested
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return nested


def run_data(args) -> int:
    from savedmodels.detection import records

    splits = {"train": args.train}
    if args.validation:
        splits["validation"] = args.validation
    converted = {name: records.convert(path, args.images) for name, path in splits.items()}
    names = sorted({c["name"] for coco in converted.values() for c in coco["categories"]})
    if any(sorted(c["name"] for c in coco["categories"]) != names for coco in converted.values()):
        converted = {name: records.convert(path, args.images, names) for name, path in splits.items()}
    card = records.write_dataset(args.out, {name: (coco, args.images) for name, coco in converted.items()},
                                 overwrite=args.overwrite, num_shards=args.shards)
    for name, split in card["splits"].items():
        print(f"{name}: {split['images']} images, {split['boxes']} boxes, {split['skipped_boxes']} boxes skipped "
              "(listed in dataset.json)")
    print(f"wrote {args.out} ({card['num_classes'] - 1} categories: "
          f"{', '.join(c['name'] for c in card['categories'])})")
    return 0


def run_train(args) -> int:
    from savedmodels.detection import runner

    overrides = _nested(parse_overrides(args.overrides))
    nasnet = {}
    if args.backbone:
        nasnet["saved_model"] = os.path.abspath(args.backbone)
    if args.genotype:
        nasnet["genotype"] = os.path.abspath(args.genotype)
    if args.training_batchnorm:
        nasnet["frozen_batchnorm"] = False
    if nasnet:
        overrides.setdefault("task", {}).setdefault("model", {}).setdefault("backbone", {})["nasnet"] = nasnet
    params = runner.configure(args.experiment, args.data, steps=args.steps, batch_size=args.batch_size,
                              eval_batch_size=args.eval_batch_size, input_size=args.input_size,
                              learning_rate=args.learning_rate, overrides=overrides)
    metrics = runner.train(params, args.experiment, args.model_dir, evaluate=not args.no_eval)
    _print_metrics(metrics)
    return 0


def run_eval(args) -> int:
    from savedmodels.detection import runner

    _print_metrics(runner.evaluate(args.model_dir, data_dir=args.data))
    return 0


def _print_metrics(metrics):
    if metrics:
        print(json.dumps({k: round(v, 4) for k, v in metrics.items()}, indent=1))


def run_predict(args) -> int:
    import numpy as np
    from PIL import Image

    from nasnet_keras import fileio
    from savedmodels.detection import drawing, runner

    missing = [path for path in args.images if not os.path.isfile(path)]
    if missing:
        raise ValueError(f"Image files not found: {missing}")
    module, params = runner.restored_module(args.model_dir)
    names = _category_names(params)
    os.makedirs(args.out, exist_ok=True)
    results = {}
    for path in args.images:
        try:
            with Image.open(path) as opened:
                image = np.asarray(opened.convert("RGB"))
        except OSError as error:
            raise ValueError(f"{path} is not a readable image: {error}") from None
        found = runner.detect(module, image)
        out = os.path.join(args.out, os.path.splitext(os.path.basename(path))[0] + ".png")
        drawing.save_png(drawing.draw(image, found["boxes"], found["scores"], found["classes"], names,
                                      min_score=args.min_score), out)
        kept = found["scores"] >= args.min_score
        results[path] = {"png": out, "boxes_ymin_xmin_ymax_xmax": found["boxes"][kept].round(1).tolist(),
                         "scores": found["scores"][kept].round(4).tolist(),
                         "classes": [names.get(int(c), int(c)) for c in found["classes"][kept]]}
        print(f"{path}: {int(kept.sum())} boxes with score >= {args.min_score} -> {out}")
    fileio.write_json(os.path.join(args.out, "detections.json"), results)
    return 0


def _category_names(params) -> dict:
    from savedmodels.detection import records

    pattern = params.task.train_data.input_path
    directory = os.path.dirname(pattern) if isinstance(pattern, str) else ""
    try:
        return {c["id"]: c["name"] for c in records.read_dataset(directory)["categories"]}
    except ValueError:
        return {}


def run_export(args) -> int:
    from savedmodels.detection import runner

    path = runner.export(args.model_dir, args.out, overwrite=args.overwrite)
    print(f"exported the detector to {path}; signatures serving_default (uint8 images), serving_bytes "
          f"(encoded images), serving_float (float32 pixels 0..255); check with: "
          f"saved_model_cli show --dir {path} --all")
    return 0
