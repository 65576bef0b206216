"""Two replicas (MirroredStrategy over two logical CPUs) against one device, in a process of its own.

`two_replica_checks.py` runs both strategies once (logical devices must be set before
TensorFlow starts, so not in the pytest process) and reports JSON; these tests judge it.
"""

import json
import os
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "two_replica_checks.py")


@pytest.fixture(scope="module")
def report():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_two_replicas_clip_the_global_batch_gradient_like_one_device(report):
    # Clipping is active at every step (the norm the optimizer clips is above the threshold) ...
    assert len(report["single_norms"]) == 4 and min(report["single_norms"]) > 10 * report["clip"], report
    # ... and two replicas clip the same all-reduced norm one device clips.
    assert report["fixed_norms"] == pytest.approx(report["single_norms"], rel=1e-5)
    assert report["fixed_vs_single"] < 1e-5, report
    # Keras alone clips each replica's share before the all-reduce: visibly different weights.
    assert report["unfixed_vs_single"] > 1e-3, report


def test_synchronized_batch_norm_moments_do_not_depend_on_the_replicas(report):
    # Inputs 100 + N(0, 0.1): normalised outputs ~1, input gradients ~10.
    ours, keras_own = report["moments"]["two_pass"], report["moments"]["keras"]
    output, gradient = ours["one_vs_two"]
    assert output < 1e-3 and gradient < 1e-2, ours
    assert ours["one_vs_reference"][0] < 1e-3 and ours["one_vs_reference"][1] < 1e-2, ours  # float64 tf.nn.moments
    # Keras' one-pass E[x^2] - E[x]^2 loses the variance to cancellation, differently per split.
    assert keras_own["one_vs_two"][0] > 0.1 and keras_own["one_vs_two"][1] > 1, keras_own
