"""SavedModels of NASNet models: TF Serving signatures and a fine-tunable, reusable root.

    from savedmodels import export
    export(model, "models/nasnet", version=1)   # -> models/nasnet/1/

One directory serves both uses: TF Serving loads its `serve` signatures
(`serving_default`, `serving_bytes`, `features`), and `hub.KerasLayer(path, trainable=True)`
in tf_keras fine-tunes its `__call__`. See docs/serving.md.
"""

from savedmodels.exporter import ExportResult, export, next_version, versions
from savedmodels.model_card import read as read_model_card

__all__ = ["ExportResult", "export", "next_version", "read_model_card", "versions"]
