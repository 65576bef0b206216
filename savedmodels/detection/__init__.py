"""Faster R-CNN with a NASNet backbone, trained by TF Model Garden (tf-models-official 2.20).

Model Garden is tf_keras (Keras 2) code; our models are Keras 3. The bridge is the reusable
backbone SavedModel (`savedmodels.reusable`, `nasnet export --backbone`), loaded with
`hub.KerasLayer(trainable=True)` inside a tf_keras backbone that Model Garden's factory
builds by name. Only this subpackage imports `official` and `tf_keras`.

    import savedmodels.detection.experiments   # registers backbone 'nasnet' and the experiments
    from official.core import exp_factory
    config = exp_factory.get_exp_config("fasterrcnn_nasnet_mobile_coco")

Modules: `backbone` (the registered backbone and its config), `experiments` (the
registered experiment configs), `coco` (VOC XML / CSV -> COCO JSON, checks), `records`
(COCO JSON + images -> TFRecords through Model Garden's create_coco_tf_record),
`tiling` (large photos -> small crops), `runner` (train / eval / predict / export),
`drawing` (boxes on PNGs), `cli` (`nasnet detect`), `treecrowns` (DeepForest's photos).

Nothing is imported here, so that `nasnet --help` (which lists `nasnet detect`) does not
load TensorFlow and Model Garden.
"""
