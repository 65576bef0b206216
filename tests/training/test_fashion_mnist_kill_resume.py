"""A real run of the CIFAR recipe on Fashion-MNIST, killed with SIGKILL mid-epoch and resumed.

This is the end-to-end check of the training path: the `nasnet train` command in a
subprocess, a hard kill, the same command resumed (here in-process), then the
evaluation. It asserts that the resumed run starts exactly at the last checkpoint's
step with the learning rate and drop-path probability the schedules give for that step,
finishes the planned number of steps, and reaches clearly better than chance (10%) on
the Fashion-MNIST test images.

The network is what a user trains after a search: a genotype JSON file (`--model
found.json`) on the CIFAR skeleton (`--base-variant cifar_6@768`), N = 1, 8 filters,
16x16 inputs. Its cells have two blocks instead of NASNet-A's five, which makes the
TensorFlow graph (traced once per process, twice in this test) markedly cheaper. Every
recipe component is on: aux head, drop path, cutout, cosine decay, and an EMA of
weights with momentum 0.9 so that the averages' checkpointing is exercised too.
"""

import json
import math
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from nasnet_keras import Genotype, cli
from nasnet_keras.training import RunDirectory, train
from nasnet_keras.training.cli import config_from_args

EPOCHS, STEPS_PER_EPOCH, LEARNING_RATE = 3, 64, 0.1  # 2048 images / batch 32


FOUND = Genotype.from_blocks(
    normal=[(0, 1, "sep_conv_3x3", "identity"), (0, 1, "avg_pool_3x3", "sep_conv_3x3")],
    reduction=[(0, 1, "sep_conv_3x3", "max_pool_3x3"), (0, 1, "avg_pool_3x3", "sep_conv_5x5")],
    name="found",
)


def command(directory, genotype_file):
    return [
        "train", "--model", genotype_file, "--base-variant", "cifar_6@768", "--dataset", "fashion_mnist",
        "--directory", directory, "--num-blocks", "1", "--filters", "8", "--image-size", "16",
        "--set", f"epochs={EPOCHS}", "--set", "train_split=train[:2048]", "--set", "eval_split=test[:1000]",
        "--set", "cutout_size=6", "--set", f"base_learning_rate={LEARNING_RATE}", "--set", "ema_momentum=0.9",
        "--save-every-steps", "10", "--verbose", "2", "--no-tensorboard",
    ]


def kill_after_checkpoint(arguments, directory, min_step, timeout=400):
    """Run the command in a subprocess and SIGKILL it once a checkpoint at >= min_step exists."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen([sys.executable, "-m", "nasnet_keras.cli", *arguments], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run = RunDirectory(directory)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            latest = run.latest_checkpoint()
            if latest and latest[0] >= min_step:
                process.send_signal(signal.SIGKILL)
                process.wait(30)
                return process
            if process.poll() is not None:
                pytest.fail(f"the training subprocess exited before it was killed:\n{process.stdout.read()[-3000:]}")
            time.sleep(0.2)
        pytest.fail("no checkpoint appeared in time")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_killed_run_resumes_at_its_checkpoint_and_learns(tmp_path, capsys):
    directory = str(tmp_path / "run")
    FOUND.save(str(tmp_path / "found.json"))
    arguments = command(directory, str(tmp_path / "found.json"))
    total = EPOCHS * STEPS_PER_EPOCH
    killed = kill_after_checkpoint(arguments, directory, min_step=20)
    assert killed.returncode == -signal.SIGKILL
    run = RunDirectory(directory)
    checkpoint_step = run.latest_checkpoint()[0]
    assert 20 <= checkpoint_step < total
    assert [e["event"] for e in run.events()][0] == "start" and "end" not in [e["event"] for e in run.events()]

    assert run.read_manifest()["model"]["genotype_id"] == FOUND.id
    result = train(config_from_args(cli.build_parser().parse_args(arguments)))

    assert result.resumed and result.start_step == checkpoint_step
    assert result.final_step == result.total_steps == total
    resume = [e for e in run.events() if e["event"] == "resume"][0]
    assert resume["step"] == checkpoint_step
    expected_lr = LEARNING_RATE * 0.5 * (1 + math.cos(math.pi * checkpoint_step / total))
    assert resume["learning_rate"] == pytest.approx(expected_lr, rel=1e-5)
    assert resume["drop_path_progress"] == pytest.approx(checkpoint_step / total, rel=1e-6)
    saved_after = [e["step"] for e in run.events() if e["event"] == "checkpoint" and e["time"] > resume["time"]]
    assert saved_after[0] > checkpoint_step and saved_after[-1] == total
    end = run.events()[-1]
    assert end["event"] == "end" and end["ema"] is True and end["step"] == total
    accuracy = result.metrics["predictions_accuracy"]
    with capsys.disabled():
        print(f"\nFashion-MNIST test accuracy after {total} steps (killed after step {checkpoint_step}, resumed): "
              f"{accuracy:.3f}")
    assert accuracy > 0.5  # chance is 0.1
    # Running the command once more finds the schedule complete: no training, the same
    # averaged weights evaluated again, the same scores.
    capsys.readouterr()
    assert cli.main(arguments) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.rindex("{\n"):])
    assert summary["resumed"] and summary["start_step"] == summary["final_step"] == total
    assert summary["eval_predictions_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    exported = keras.saving.load_model(os.path.join(directory, "final.keras"))
    assert list(exported.output_names) == ["predictions"]  # the inference model: no aux head, no optimizer
    np.testing.assert_array_equal(exported.get_layer("predictions").get_weights()[0],
                                  result.model.get_layer("predictions").get_weights()[0])
