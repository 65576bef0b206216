"""Training the final models with the paper's recipes (`nasnet train`, `train(...)`).

    from nasnet_keras.training import train
    result = train(model="cifar_6@768", dataset="cifar10", directory="runs/cifar")

Modules: `recipes` (the CIFAR and ImageNet recipes as dataclasses, with sources),
`inputs` + `augment` (pipelines, cutout, Inception crops), `models` (what to build,
fine-tuning), `ema` (averaged weights for evaluation/export), `checkpointing` (run
directory, manifest, kill-safe checkpoints), `trainer` (the `train` function), `cli`.
"""

from nasnet_keras.training.recipe_augment import central_crop, cutout, cutout_mask, inception_crop
from nasnet_keras.training.checkpointing import CheckpointCallback, RunDirectory
from nasnet_keras.training.recipes import RECIPES, CifarRecipe, ImageNetRecipe, Recipe, get_recipe
from nasnet_keras.training.trainer import TrainConfig, TrainResult, compile_for_recipe, train

__all__ = [
    "RECIPES",
    "CheckpointCallback",
    "CifarRecipe",
    "ImageNetRecipe",
    "Recipe",
    "RunDirectory",
    "TrainConfig",
    "TrainResult",
    "central_crop",
    "compile_for_recipe",
    "cutout",
    "cutout_mask",
    "get_recipe",
    "inception_crop",
    "train",
]
