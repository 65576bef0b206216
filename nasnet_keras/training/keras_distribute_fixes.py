"""Four fixes to Keras 3's TensorFlow trainer, optimizer and BatchNorm under `tf.distribute`, the only place
this package reaches into `keras.src`. Checked against keras 3.15.1 (with TensorFlow 2.20);
`tests/training/test_keras_distribute_fixes.py` fails loudly when the internals they replace
change.

Keras 3's `fit` under MultiWorkerMirroredStrategy fails at its first step
(keras-team/keras#20585, tensorflow/tensorflow#72388), twice over:

1. `Trainer._maybe_symbolic_build` draws the first batch of the distributed dataset and
   `strategy.reduce("MEAN", batch)`s it only to learn its shapes; MWMS's reduce rejects
   the (x, y) structure ("Attempt to convert a value (PerReplica...) to a Tensor"). Under
   every strategy it also costs a collective and a batch. `build_without_a_batch` gives
   the symbolic build the functional model's own input/output specs instead (shapes
   and dtypes are all it reads).
2. `reduce_per_replica` reduces the per-replica logs with `strategy.reduce("MEAN", v,
   axis=0)` under MWMS, which fails for the scalar losses and metrics every train and
   test step returns ("Invalid reduction dimension 0 for input with 0 dimensions").
   `fix_multi_worker_log_reduction` reduces scalars over the replicas only (axis=None:
   the mean of the replicas' values, what MirroredStrategy reports) and leaves
   everything else to Keras.

And under every strategy with more than one replica (MirroredStrategy included):

3. the optimizer clips gradients per replica, before the all-reduce, so the recipes'
   global-norm clipping depends on the number of replicas; `clip_after_all_reduce`
   clips the all-reduced gradient instead, as a single device does;
4. synchronized BatchNormalization computes its variance in one pass, E[x^2] - E[x]^2
   from all-reduced sums: its rounding depends on how the batch is split over the
   replicas, and its gradient cancels badly enough that R replicas can compute a
   gradient 1e-3 (relative) away from one device's on the same weights and batch
   (measured: docs/distributed_training.md). `two_pass_synchronized_moments` all-reduces
   the mean first and then the centred squares, as `tf.nn.moments` does on one device.
"""

from __future__ import annotations

import types

FIXED_MARK = "_nasnet_multi_worker_fix"


def build_without_a_batch(model) -> None:
    """Replace `model._maybe_symbolic_build` by one that builds from the model's own specs."""
    from keras import tree

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if data_batch is None:
            targets = tree.pack_sequence_as(self._outputs_struct, self.outputs)
            data_batch = (self._inputs_struct, targets)
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = types.MethodType(_maybe_symbolic_build, model)


def fix_multi_worker_log_reduction() -> None:
    """Make Keras reduce scalar step outputs over the replicas under MWMS (idempotent, process-wide)."""
    from keras import tree
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica
    if getattr(original, FIXED_MARK, False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not tf_trainer._collective_all_reduce_multi_worker(strategy):
            return original(values, strategy, reduction)

        def reduce(value):
            local = strategy.experimental_local_results(value)[0]
            if getattr(local, "shape", None) is not None and local.shape.rank == 0:
                return strategy.reduce("MEAN", value, axis=None)
            return original(value, strategy, reduction)

        return tree.map_structure(reduce, values)

    setattr(reduce_per_replica, FIXED_MARK, True)
    tf_trainer.reduce_per_replica = reduce_per_replica


def clip_after_all_reduce(optimizer) -> bool:
    """Clip the replicas' summed gradient, as one device clips its gradient; returns whether it changed anything.

    Keras 3.15's optimizer applies `clipnorm` / `global_clipnorm` / `clipvalue` in
    `apply()`, in replica context, *before* `_backend_update_step` all-reduces the
    gradients: each replica clips its own share (its local mean gradient divided by the
    number of replicas), so a recipe's "clip the global norm at 5" means something else
    on every strategy and the result depends on the number of replicas. Here the
    instance's update step all-reduces first and then clips the sum -- the gradient of
    the whole global batch, exactly what a single device clips.
    """
    import tensorflow as tf
    from keras.src import backend

    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # under LossScaleOptimizer
    if optimizer.clipnorm is None and optimizer.global_clipnorm is None and optimizer.clipvalue is None:
        return False
    if getattr(optimizer, FIXED_MARK, False):
        return True
    clip = optimizer._clip_gradients

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        variables = [v.value if isinstance(v, backend.Variable) else v for v in trainable_variables]
        reduced = self._all_reduce_sum_gradients(list(zip(grads, variables)))
        clipped = clip([g for g, _ in reduced])
        tf.__internal__.distribute.interim.maybe_merge_call(
            self._distributed_tf_update_step, self._distribution_strategy,
            list(zip(clipped, [v for _, v in reduced])), learning_rate,
        )

    optimizer._clip_gradients = lambda grads: grads  # apply() no longer clips per replica
    optimizer._backend_update_step = types.MethodType(_backend_update_step, optimizer)
    setattr(optimizer, FIXED_MARK, True)
    return True


def two_pass_synchronized_moments(layer) -> None:
    """Give a synchronized BatchNormalization layer two-pass global-batch moments (mean, then centred squares).

    Keras 3.15's synchronized moments (`keras.src.backend.tensorflow.nn._compute_moments_sync`)
    all-reduce sum(x) and sum(x^2) and take E[x^2] - E[x]^2. That cancellation is
    ill-conditioned and its rounding follows the split of the batch over replicas, so
    one device and R replicas stop computing the same gradient: on the tiny NASNet of
    tests/training/test_multi_worker.py one step's global gradient norm came out
    6.70862 on 2 replicas against 6.69925 on one device, same weights and batch (with
    this two-pass form: 6.699253 against 6.699251). The mean's all-reduce comes first,
    then the centred squares are all-reduced: one more collective round per layer and
    step. The variance's gradient ignores the mean's (`stop_gradient`, as `tf.nn.moments`
    does): sum((x - m)^2) has zero derivative in m at the mean, so nothing is lost.
    Masked inputs and layers that are not synchronized keep Keras' own moments.
    """
    import tensorflow as tf

    original = layer._moments

    def _moments(self, inputs, mask):
        context = tf.distribute.get_replica_context()
        if mask is not None or not self.synchronized or context is None:
            return original(inputs, mask)
        axes = self._reduction_axes
        # This replica's element count per channel is a scalar read off the shape (replicas may
        # hold different batch sizes, so it is all-reduced with the sums).
        local_count = tf.cast(tf.reduce_prod(tf.gather(tf.shape(inputs), axes)), inputs.dtype)
        total, count = context.all_reduce(tf.distribute.ReduceOp.SUM, [tf.reduce_sum(inputs, axis=axes), local_count])
        mean = tf.math.divide_no_nan(total, count)
        centred = tf.math.squared_difference(inputs, tf.stop_gradient(mean))
        squares = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(centred, axis=axes))
        return mean, tf.math.divide_no_nan(squares, count)

    layer._moments = types.MethodType(_moments, layer)
