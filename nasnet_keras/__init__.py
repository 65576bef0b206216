"""nasnet_keras: the NASNet system (Zoph et al., CVPR 2018) for Keras 3 / TensorFlow.

Entry points:
    NASNetMobile, NASNetLarge, NASNet   keras.applications-compatible constructors
    NASNetCIFAR                         the CIFAR skeleton
    Genotype, NASNET_A                  architectures as data
    NASNetCell, ScheduledDropPath       the building blocks as Keras layers
    variants.build(name)                the paper's named "N @ F" models
    profile(model)                      parameters and Mult-Adds
"""

from nasnet_keras.applications import (
    NASNet,
    NASNetCIFAR,
    NASNetLarge,
    NASNetMobile,
    decode_predictions,
    preprocess_input,
)
from nasnet_keras.cells import NASNetCell
from nasnet_keras.drop_path import ScheduledDropPath, ScheduledDropPathCallback
from nasnet_keras.genotype import COMBINES, NASNET_A, OPS, Block, CellGenotype, Genotype, as_genotype
from nasnet_keras.profiling import profile

__version__ = "0.1.0"
