"""What the compiled loss computes: the aux head weighted into the total, label smoothing."""

import numpy as np
import pytest

from nasnet_keras.training import CifarRecipe, ImageNetRecipe, compile_for_recipe
from training_helpers import batch, two_head_model


def cross_entropy(y, p, smoothing=0.0):
    classes = y.shape[-1]
    target = y * (1 - smoothing) + smoothing / classes
    return float(np.mean(-np.sum(target * np.log(np.clip(p, 1e-7, 1.0)), axis=-1)))


@pytest.mark.parametrize("aux_weight", [0.4, 0.7])
def test_aux_loss_weight_enters_the_total_loss(aux_weight):
    model = two_head_model()
    compile_for_recipe(model, CifarRecipe(aux_loss_weight=aux_weight), steps_per_epoch=10, jit_compile=False)
    x, y = batch()
    scores = model.evaluate(x, {"predictions": y, "aux_predictions": y}, batch_size=len(x), return_dict=True,
                            verbose=0)
    main, aux = model.predict(x, verbose=0)
    assert scores["predictions_loss"] == pytest.approx(cross_entropy(y, main), rel=1e-5)
    assert scores["aux_predictions_loss"] == pytest.approx(cross_entropy(y, aux), rel=1e-5)
    assert scores["loss"] == pytest.approx(cross_entropy(y, main) + aux_weight * cross_entropy(y, aux), rel=1e-5)


def test_label_smoothing_moves_0_1_of_the_target_mass_to_all_classes():
    model = two_head_model(aux=False)
    compile_for_recipe(model, ImageNetRecipe(aux_loss_weight=0.0), steps_per_epoch=10, jit_compile=False)
    x, y = batch()
    scores = model.evaluate(x, y, batch_size=len(x), return_dict=True, verbose=0)
    p = model.predict(x, verbose=0)
    assert scores["loss"] == pytest.approx(cross_entropy(y, p, smoothing=0.1), rel=1e-5)
    assert abs(cross_entropy(y, p, smoothing=0.1) - cross_entropy(y, p)) > 1e-3  # smoothing changes the loss
    assert set(scores) == {"loss", "accuracy", "top5"}
