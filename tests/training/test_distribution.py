"""--strategy: TF_CONFIG parsing and its errors, the strategy choice, the batch split, the CLI's exit codes.

Everything here runs in the test process without starting a TensorFlow server; the
two-process runs are in test_multi_worker.py.
"""

import json
import socket

import pytest
import tensorflow as tf

from nasnet_keras import cli
from nasnet_keras.training.distribution import (
    STRATEGIES,
    check_batch_split,
    check_port_free,
    choose,
    make_distribution,
    parse_tf_config,
)

TWO_WORKERS = {"cluster": {"worker": ["127.0.0.1:20001", "127.0.0.1:20002"]}, "task": {"type": "worker", "index": 1}}


def test_a_cluster_is_parsed_in_tensorflows_task_order():
    config = parse_tf_config(json.dumps(TWO_WORKERS))
    assert (config.num_workers, config.task, config.address, config.is_chief) == (
        2, "worker:1", "127.0.0.1:20002", False)
    with_chief = parse_tf_config(json.dumps({"cluster": {"worker": ["h1:1", "h2:2"], "chief": ["h0:3"]},
                                             "task": {"type": "worker", "index": 0}}))
    assert with_chief.training_tasks == [("chief", 0), ("worker", 0), ("worker", 1)]
    assert not with_chief.is_chief  # the chief task is the chief; worker 0 is not
    assert parse_tf_config(None) is None and parse_tf_config("  ") is None


@pytest.mark.parametrize("text, expected", [
    ('{"cluster": {"worker": ["a:1"]', r"is not valid JSON \(Expecting"),
    ('["a:1"]', "must be a JSON object, not list"),
    ('{"task": {"type": "worker", "index": 0}}', "has no 'cluster' object"),
    ('{"cluster": {"worker": ["a:1"]}}', "has no 'task' object"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
     r"task.index=2, but its 'worker' job has 2 address\(es\), so the index must be in 0..1"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "wroker", "index": 0}}',
     r"task.type='wroker', which is not a job of its cluster \(worker\)"),
    ('{"cluster": {"workers": ["a:1"]}, "task": {"type": "workers", "index": 0}}',
     r"names unknown job\(s\) \['workers'\]"),
    ('{"cluster": {"worker": ["a:1"], "evaluator": ["e:2"]}, "task": {"type": "evaluator", "index": 0}}',
     "only 'chief' and 'worker' tasks train"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["p:2"]}, "task": {"type": "worker", "index": 0}}',
     "names parameter servers"),
    ('{"cluster": {"worker": ["a:99999"]}, "task": {"type": "worker", "index": 0}}',
     r"cluster.worker\[0\]='a:99999': the port must be a number in 1..65535"),
    ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}',
     r"cluster.worker\[0\]='localhost', which is not a 'host:port' string"),
    ('{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}',
     "gives worker:1 and worker:0 the same address 'a:1'"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": "0"}}', "task.index='0'"),
])
def test_malformed_tf_config_is_refused_naming_the_value(text, expected):
    with pytest.raises(ValueError, match=expected) as error:
        parse_tf_config(text)
    assert "Received: TF_CONFIG=" in str(error.value)


def test_the_strategy_follows_tf_config_and_the_gpus():
    two = parse_tf_config(json.dumps(TWO_WORKERS))
    one = parse_tf_config(json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}))
    assert choose("auto", None, 0) == "one-device" and choose("auto", None, 1) == "one-device"
    assert choose("auto", None, 4) == "mirrored"
    assert choose("auto", two, 0) == "multi-worker" and choose("auto", one, 0) == "one-device"
    assert choose("multi-worker", one, 0) == "multi-worker"  # a one-worker job is allowed when asked for
    with pytest.raises(ValueError, match="--strategy multi-worker needs TF_CONFIG"):
        choose("multi-worker", None, 0)
    with pytest.raises(ValueError, match="TF_CONFIG names 2 workers but --strategy mirrored trains on this machine"):
        choose("mirrored", two, 2)
    with pytest.raises(ValueError, match=r"`strategy` must be one of auto, .*tpu. Received: strategy='horovod'"):
        choose("horovod", None, 0)
    assert STRATEGIES == ("auto", "one-device", "mirrored", "multi-worker", "tpu")


def test_the_global_batch_must_split_evenly_over_the_replicas():
    assert check_batch_split(64, 4, "multi-worker", 2) == 16
    with pytest.raises(ValueError, match=r"over the 4 replicas of --strategy multi-worker \(2 worker\(s\)\).*"
                                         r"Received: batch_size=30, replicas=4"):
        check_batch_split(30, 4, "multi-worker", 2)


def test_one_device_and_mirrored_keep_the_recipes_learning_rate_rule():
    from nasnet_keras.training.recipes import get_recipe

    recipe = get_recipe("cifar", batch_size=64)
    for name, kind in (("one-device", type(tf.distribute.get_strategy())), ("mirrored", tf.distribute.MirroredStrategy)):
        distribution = make_distribution(name, recipe.batch_size, environ={})
        assert isinstance(distribution.strategy, kind)
        described = distribution.describe(recipe)
        assert described["learning_rate"] == pytest.approx(0.025 * 64 / 32)  # 0.025 per 32 images, linear
        assert described["global_batch_size"] == 64
        assert described["per_replica_batch_size"] == 64 // distribution.replicas


def test_tpu_without_a_tpu_is_a_clear_error():
    with pytest.raises(ValueError, match=r"--strategy tpu found no TPU for tpu='local' .*--tpu NAME or \$TPU_NAME"):
        make_distribution("tpu", 8, environ={})


def test_a_port_in_use_is_named(monkeypatch, tmp_path, capsys):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        with pytest.raises(ValueError, match=f"address '127.0.0.1:{port}', but port {port} is already in use"):
            check_port_free(f"127.0.0.1:{port}", "worker:0")
        config = {"cluster": {"worker": [f"127.0.0.1:{port}", "127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}
        monkeypatch.setenv("TF_CONFIG", json.dumps(config))
        code = cli.main(["train", "--model", "cifar_6@768", "--dataset", "fashion_mnist",
                         "--directory", str(tmp_path / "run")])
    finally:
        holder.close()
    assert code == 2
    err = capsys.readouterr().err
    assert f"nasnet train: error: TF_CONFIG gives worker:0 the address '127.0.0.1:{port}'" in err
    assert "Traceback" not in err and not (tmp_path / "run").exists()
    check_port_free(f"127.0.0.1:{port}")  # free again once released


def test_the_command_line_refuses_malformed_tf_config_with_exit_2(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}')
    code = cli.main(["train", "--model", "cifar_6@768", "--dataset", "fashion_mnist", "--directory",
                     str(tmp_path / "run"), "--strategy", "multi-worker"])
    assert code == 2
    err = capsys.readouterr().err
    assert "nasnet train: error: TF_CONFIG has task.index=3" in err and "Received: TF_CONFIG=" in err
    assert not (tmp_path / "run").exists()
