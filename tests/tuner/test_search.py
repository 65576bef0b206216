"""tuner.search.NASTuner end to end on real data: outputs, a failed child, resume, retraining,
curves, and keras-tuner's distributed mode (chief + worker processes).

One tiny PPO search (3 trials: B=2 cells, N=1, 4 filters, 16x16 Fashion-MNIST images,
128 training / 64 held-out images, one eager epoch) is shared by the tests of this module.
"""

import json
import math
import os
import socket
import subprocess
import sys

import keras
import pytest
from PIL import Image

from nasnet_keras import data
from nasnet_keras.genotype import Genotype
from tuner import children, history, search
from tuner.children import ChildConfig
from tuner.oracles import make_oracle
from tuner.search import NASTuner
from tuner.space import SearchSpace

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.skipif(
    not os.path.exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"),
    reason="Fashion-MNIST IDX files missing: apt-get install dataset-fashion-mnist (make data)",
)

SPACE = SearchSpace(num_blocks=2)
CONFIG = ChildConfig(classes=10, num_cells=1, filters=4, epochs=1, image_size=16, batch_size=64, run_eagerly=True,
                     seed=0)
RUN = {"dataset": "fashion_mnist", "subset": 128, "validation_size": 64}


def assert_png(path):
    assert os.path.getsize(path) > 1000
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 200


def make_tuner(directory, max_trials, config=CONFIG, overwrite=False, lines=None):
    oracle = make_oracle("ppo", SPACE, max_trials=max_trials, seed=1, batch_size=2)
    return NASTuner(oracle, config, strategy="ppo", run_info=RUN, fit_verbose=0, directory=str(directory),
                    overwrite=overwrite, log=(lines.append if lines is not None else print))


@pytest.fixture(scope="module")
def split():
    return data.search_split("fashion_mnist", validation_size=64, subset=128, seed=0)


@pytest.fixture(scope="module")
def searched(tmp_path_factory, split):
    """A 3-trial PPO search whose second child diverges (its loss is made NaN)."""
    directory = tmp_path_factory.mktemp("search")
    calls, lines = [], []

    def make_loss():
        calls.append(1)
        loss = keras.losses.SparseCategoricalCrossentropy()
        return (lambda y, p: loss(y, p) * float("nan")) if len(calls) == 2 else loss

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(children, "make_loss", make_loss)
        tuner = make_tuner(directory, max_trials=3, overwrite=True, lines=lines)
        report = tuner.search(*split)
    return tuner, report, lines, directory


def test_search_writes_valid_outputs(searched):
    tuner, report, lines, directory = searched
    assert set(report) == {"best_genotype", "best_cells", "search_curve"}
    best = Genotype.load(report["best_genotype"])
    genotype, score, trial_id = tuner.best_genotypes(1)[0]
    assert best.id == genotype.id and best.num_blocks == 2
    assert score == max(t.score for t in tuner.oracle.trials.values() if t.status == "COMPLETED")
    assert_png(report["best_cells"])
    assert_png(report["search_curve"])
    assert report["search_curve"] == os.path.join(str(directory), "search_curve.png")
    config = history.read_search_config(tuner.project_dir)
    assert config["strategy"] == "ppo" and config["search_space"] == SPACE.to_dict()
    assert config["child_config"] == CONFIG.to_dict()


def test_a_diverging_child_is_a_failed_trial_and_the_search_goes_on(searched):
    tuner, report, lines, directory = searched
    statuses = {tid: trial.status for tid, trial in tuner.oracle.trials.items()}
    assert statuses == {"0": "COMPLETED", "1": "FAILED", "2": "COMPLETED"}
    assert len(lines) == 4 and lines[3].startswith("Search done: 3 children trained, 0 rewards from the cache")
    # one summary line per trial, then the search's
    assert lines[1].startswith("Trial 1/3 | genotype ") and "FAILED" in lines[1] and "diverged" in lines[1]
    assert "val_accuracy" in lines[2] and "COMPLETED" in lines[2]
    with open(os.path.join(tuner.get_trial_dir("1"), history.CHILD_FILE)) as f:
        child = json.load(f)
    assert child["status"] == "FAILED" and "ChildFailedError" in child["reason"]
    records = history.read_trials(tuner.project_dir)
    assert [r.status for r in records] == ["COMPLETED", "FAILED", "COMPLETED"]
    assert all(r.genotype_id for r in records)
    assert Genotype.load(os.path.join(tuner.get_trial_dir("0"), "genotype.json")).id == records[0].genotype_id


def test_resume_continues_and_refuses_other_settings(searched, split):
    _, _, _, directory = searched
    with pytest.raises(ValueError, match=r"child_config.epochs: stored 1, now 2.*overwrite=True"):
        make_tuner(directory, max_trials=4, config=CONFIG.replace(epochs=2))
    lines = []
    resumed = make_tuner(directory, max_trials=4, lines=lines)
    assert len(resumed.oracle.trials) == 3  # reloaded, not restarted
    resumed.search(*split)
    assert len(lines) == 2 and lines[0].startswith("Trial 3/4") and lines[1].startswith("Search done: 4 children")
    assert len(resumed.oracle.trials) == 4


def test_retrain_top_k_picks_a_final_genotype_and_resumes(searched, split, monkeypatch):
    tuner, _, lines, _ = searched
    results = tuner.retrain_top_k(*split, k=1, epochs=1)
    assert len(results) == 1 and results[0]["status"] == "COMPLETED"
    final = Genotype.load(os.path.join(tuner.project_dir, search.FINAL_GENOTYPE_FILE))
    assert final.id == results[0]["genotype_id"] == tuner.best_genotypes(1)[0][0].id
    assert_png(os.path.join(tuner.project_dir, search.FINAL_CELLS_FILE))

    def no_training(*args, **kwargs):
        raise AssertionError("already retrained: must be read from retrain.json")

    monkeypatch.setattr(search, "train_child", no_training)
    assert tuner.retrain_top_k(*split, k=1, epochs=1)[0]["accuracy"] == results[0]["accuracy"]


def test_curves_count_unique_models_and_draw_one_line_per_strategy(tmp_path):
    def record(i, genotype, score, status="COMPLETED"):
        return history.TrialRecord(str(i), genotype, status, score)

    records = [record(0, "a", 0.5), record(1, "b", None, "FAILED"), record(2, "a", 0.7), record(3, "c", 0.6),
               record(4, "d", 0.2)]
    assert history.best_so_far(records, 1) == [0.5, 0.5, 0.7, 0.7, 0.7]
    top2 = history.best_so_far(records, 2)
    assert math.isnan(top2[2]) and top2[3] == pytest.approx(0.65) and top2[4] == pytest.approx(0.65)
    # Two strategies sharing a directory: one curve PNG with both.
    for strategy, scores in (("ppo", [0.3, 0.5]), ("random", [0.4, 0.2])):
        project = tmp_path / strategy
        for i, score in enumerate(scores):
            (project / f"trial_{i}").mkdir(parents=True)
            (project / f"trial_{i}" / "trial.json").write_text(json.dumps(
                {"trial_id": str(i), "status": "COMPLETED", "score": score, "hyperparameters": {"values": {}}}))
        (project / history.SEARCH_CONFIG_FILE).write_text(json.dumps({"strategy": strategy,
                                                                      "search_space": SPACE.to_dict()}))
    assert set(history.find_projects(str(tmp_path))) == {"ppo", "random"}
    assert_png(search.write_search_curve(str(tmp_path)))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_keras_tuner_distributed_mode_chief_and_worker(tmp_path):
    """`nasnet search` under KERASTUNER_* variables: the chief serves, a worker trains."""
    directory = tmp_path / "dist"
    command = [sys.executable, "-m", "nasnet_keras.cli", "search", "--dataset", "fashion_mnist", "--strategy", "ppo",
               "--max-trials", "2", "--epochs", "1", "--filters", "4", "--num-cells", "1", "--num-blocks", "1",
               "--subset", "64", "--validation-size", "32", "--image-size", "16", "--batch-size", "64", "--run-eagerly", "yes",
               "--controller-batch", "2", "--verbose", "0", "--directory", str(directory)]
    base = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(_free_port()),
            "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO}
    chief = subprocess.Popen(command, cwd=REPO, env={**base, "KERASTUNER_TUNER_ID": "chief"},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        worker = subprocess.run(command, cwd=REPO, env={**base, "KERASTUNER_TUNER_ID": "tuner0"},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=400)
        chief_out, _ = chief.communicate(timeout=120)
    finally:
        if chief.poll() is None:
            chief.kill()
            chief.wait()
    assert worker.returncode == 0, worker.stdout[-3000:]
    assert chief.returncode == 0, chief_out[-3000:]
    assert "Trial 0/2 | genotype" in worker.stdout and "Trial 1/2 | genotype" in worker.stdout
    assert "best_genotype" in chief_out  # the chief writes the report once the search is over
    records = history.read_trials(str(directory / "ppo"))
    assert [r.status for r in records] == ["COMPLETED", "COMPLETED"]
    assert Genotype.load(str(directory / "ppo" / search.BEST_GENOTYPE_FILE)).num_blocks == 1
    assert_png(str(directory / "search_curve.png"))


def _events(run_dir):
    """(tag, plugin, value or None) of every summary in the event files under `run_dir`."""
    import glob

    import tensorflow as tf

    found = []
    for path in glob.glob(os.path.join(run_dir, "**", "events.out.tfevents.*"), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                array = tf.make_ndarray(value.tensor) if value.HasField("tensor") else None
                number = float(array) if array is not None and array.size == 1 and array.dtype.kind == "f" else None
                found.append((value.tag, value.metadata.plugin_data.plugin_name, number, event.step))
    return found


def test_tensorboard_logs_of_the_search(searched):
    """The event files hold the search run's scalars, the PPO statistics and the HParams sessions."""
    from tensorboard.plugins.hparams import metadata as hparams_metadata
    from tensorboard.plugins.hparams import plugin_data_pb2

    tuner, _, _, directory = searched
    root = os.path.join(tuner.project_dir, "tensorboard")
    search_tags = {tag for tag, *_ in _events(os.path.join(root, "search"))}
    assert {"search/score", "search/best_so_far", "search/cache_hits"} <= search_tags
    # batch_size=2: the two completed children made one PPO update.
    assert {f"controller/{k}" for k in ("mean_reward", "baseline", "entropy", "approx_kl", "clip_fraction")} <= search_tags
    best = [v for tag, _, v, _ in sorted(_events(os.path.join(root, "search")), key=lambda event: event[3])
            if tag == "search/best_so_far"]  # in step order (a resumed search writes a second event file)
    assert best == sorted(best) and best[-1] == pytest.approx(tuner.best_genotypes(1)[0][1], abs=1e-6)
    # HParams: one session per completed trial, with its metrics...
    completed = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    sessions = {name: {tag: v for tag, _, v, _ in _events(os.path.join(root, "hparams", name))}
                for name in os.listdir(os.path.join(root, "hparams")) if name.startswith("trial_")}
    # (another test of this module resumes the search in the same directory and adds trials)
    assert {f"trial_{t.trial_id}" for t in completed} <= set(sessions) and len(completed) >= 2
    for trial in completed:
        metrics = sessions[f"trial_{trial.trial_id}"]
        assert metrics["val_accuracy"] == pytest.approx(trial.score, abs=1e-6)
        assert metrics["params"] > 0 and metrics["mult_adds"] > 0
        assert hparams_metadata.SESSION_START_INFO_TAG in metrics
    # ... and the decisions and genotype id as its hyperparameters.
    import tensorflow as tf

    start_infos = []
    for path in glob_events(os.path.join(root, "hparams")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == hparams_metadata.SESSION_START_INFO_TAG:
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    start_infos.append(data.session_start_info)
    assert len(start_infos) == len(sessions)  # one session start per logged trial
    for info in start_infos:
        assert set(SPACE.names) | {"genotype_id"} == set(info.hparams)
        assert len(info.hparams["genotype_id"].string_value) == 10
    # Each child's own Keras curves.
    children_dirs = os.listdir(os.path.join(root, "children"))
    assert {f"trial_{t.trial_id}" for t in completed} <= set(children_dirs)


def glob_events(run_dir):
    import glob

    return glob.glob(os.path.join(run_dir, "**", "events.out.tfevents.*"), recursive=True)
