"""The chief's process runs TensorFlow on one-thread pools; workers keep TensorFlow's defaults.

Each case runs in its own interpreter: TensorFlow fixes its thread pools once per process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(code: str, tuner_id: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}
    env.update(PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3", KERASTUNER_TUNER_ID=tuner_id,
               KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT="1")
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def test_the_chief_uses_one_thread_pools_through_its_oracle():
    out = _run("""
        import tensorflow as tf
        from tuner.distributed import CHIEF_TF_THREADS, use_chief_threads
        from tuner.oracles import make_oracle
        from tuner.space import SearchSpace
        assert use_chief_threads()
        oracle = make_oracle("ppo", SearchSpace(num_blocks=1), max_trials=2, seed=0)
        oracle.controller.sample(3)
        assert use_chief_threads()  # again, after the first op: already applied, no error
        print(CHIEF_TF_THREADS, tf.config.threading.get_intra_op_parallelism_threads(),
              tf.config.threading.get_inter_op_parallelism_threads())
    """, tuner_id="chief")
    assert out == "1 1 1"


def test_a_worker_keeps_the_defaults_and_a_chief_started_late_keeps_running():
    out = _run("""
        import os
        import tensorflow as tf
        from tuner.distributed import use_chief_threads
        assert not use_chief_threads()  # a worker: its children's training needs the default pools
        tf.constant(1.0) + 1.0  # TensorFlow's runtime starts with its default pools
        os.environ["KERASTUNER_TUNER_ID"] = "chief"
        late = use_chief_threads()  # e.g. a chief served from a notebook: no error, the pools stay
        print(late, tf.config.threading.get_intra_op_parallelism_threads(),
              tf.config.threading.get_inter_op_parallelism_threads())
    """, tuner_id="worker-0")
    assert out == "False 0 0", out
