"""Watching a search in TensorBoard, as keras-tuner users do (`tensorboard --logdir <project>/tensorboard`).

Written under `<project>/tensorboard/`:
    children/trial_<id>/   each child's own training curves (Keras' TensorBoard callback)
    search/                the search as one run, one step per trained child:
                           search/score, search/best_so_far, search/cache_hits; and per PPO
                           update (step = update number): controller/mean_reward,
                           controller/baseline, controller/entropy, controller/approx_kl,
                           controller/clip_fraction, controller/loss
    hparams/               the HParams dashboard: one session per trial with the
                           decisions and the genotype id as hyperparameters and the
                           objective, params and Mult-Adds as metrics

The controller statistics come from the oracle object, so they are written where the
oracle lives with the trial loop (a single-process search); in keras-tuner's distributed
mode a worker only holds an `OracleClient` and writes the other runs.
"""

from __future__ import annotations

import math
import os

import keras

TENSORBOARD_DIR = "tensorboard"
PPO_STATS = ("mean_reward", "baseline", "entropy", "approx_kl", "clip_fraction", "loss")


class _MultAdds(keras.callbacks.Callback):
    """Counts the child's Mult-Adds at the start of its training (no extra build)."""

    def __init__(self):
        super().__init__()
        self.value: int | None = None

    def on_train_begin(self, logs=None):
        from nasnet_keras.profiling import count_mult_adds

        try:
            self.value = count_mult_adds(self.model)
        except Exception:  # noqa: BLE001 -- a count that cannot be made must not fail the child
            self.value = None


class SearchBoard:
    """TensorBoard logs of one NAS project (see the module docstring)."""

    def __init__(self, project_dir: str, search_space, objective: str):
        self.root = os.path.join(project_dir, TENSORBOARD_DIR)
        self.search_space = search_space
        self.objective = objective
        self._writer = None
        self._best = -math.inf
        self._num_logged = 0
        self._updates_logged = 0
        self._mult_adds: dict[str, _MultAdds] = {}

    def resume(self, oracle) -> None:
        """Continue the curves of a resumed search: best-so-far and the step count start from
        the trials the oracle already holds (not from scratch), PPO updates already logged
        are not logged again."""
        scores = [t.score for t in oracle.trials.values()
                  if t.status == "COMPLETED" and t.score is not None and math.isfinite(t.score)]
        self._num_logged = len(scores)
        self._best = max(scores, default=-math.inf)
        ppo = getattr(oracle, "ppo", None)
        if ppo is not None:
            self._updates_logged = ppo.num_updates

    def _search_writer(self):
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.root, "search"))
            self._write_hparams_config()
        return self._writer

    def _write_hparams_config(self) -> None:
        import tensorflow as tf
        from tensorboard.plugins.hparams import api as hp

        hparams = [hp.HParam(name, hp.Discrete(list(values))) for name, values in self.search_space.decisions]
        hparams.append(hp.HParam("genotype_id"))
        metrics = [hp.Metric(self.objective), hp.Metric("params"), hp.Metric("mult_adds")]
        with tf.summary.create_file_writer(os.path.join(self.root, "hparams")).as_default():
            hp.hparams_config(hparams=hparams, metrics=metrics)

    def child_callbacks(self, trial_id: str) -> list:
        counter = _MultAdds()
        self._mult_adds[trial_id] = counter
        board = keras.callbacks.TensorBoard(log_dir=os.path.join(self.root, "children", f"trial_{trial_id}"),
                                            write_graph=False, profile_batch=0)
        return [board, counter]

    def trial_end(self, oracle, trial_id: str, values: dict, genotype_id: str | None, score: float | None,
                  params: float | None) -> None:
        """Log one ended trial (a failed one only moves no curve) and any new PPO update."""
        import tensorflow as tf
        from tensorboard.plugins.hparams import api as hp

        counter = self._mult_adds.pop(trial_id, None)
        mult_adds = counter.value if counter is not None else None
        writer = self._search_writer()
        with writer.as_default():
            if score is not None and math.isfinite(score):
                self._num_logged += 1
                self._best = max(self._best, score)
                tf.summary.scalar("search/score", score, step=self._num_logged)
                tf.summary.scalar("search/best_so_far", self._best, step=self._num_logged)
                tf.summary.scalar("search/cache_hits", getattr(oracle, "num_cache_hits", 0), step=self._num_logged)
            ppo = getattr(oracle, "ppo", None)
            if ppo is not None and ppo.num_updates > self._updates_logged and ppo.last_stats:
                for key in PPO_STATS:
                    if key in ppo.last_stats:
                        tf.summary.scalar(f"controller/{key}", ppo.last_stats[key], step=ppo.num_updates)
                self._updates_logged = ppo.num_updates
        writer.flush()
        if score is None or not math.isfinite(score):
            return
        session = {name: values[name] for name in self.search_space.names if name in values}
        session["genotype_id"] = genotype_id or ""
        trial_writer = tf.summary.create_file_writer(os.path.join(self.root, "hparams", f"trial_{trial_id}"))
        with trial_writer.as_default():
            hp.hparams(session, trial_id=f"trial_{trial_id}")
            tf.summary.scalar(self.objective, score, step=0)
            if params is not None:
                tf.summary.scalar("params", float(params), step=0)
            if mult_adds is not None:
                tf.summary.scalar("mult_adds", float(mult_adds), step=0)
        trial_writer.close()
