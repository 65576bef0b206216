"""The shared atomic-write and argument-check helpers."""

import json
import os
import subprocess
import sys

import pytest

from nasnet_keras import checks, fileio


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "a.json"
    fileio.write_json(str(target), {"x": 1})
    with pytest.raises(RuntimeError):
        with fileio.atomic_path(str(target)) as temporary:
            with open(temporary, "w") as f:
                f.write("{half")
            raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"x": 1}
    assert os.listdir(tmp_path) == ["a.json"]


def test_partial_keeps_suffix_and_is_recognised(tmp_path):
    name = fileio.partial_name(str(tmp_path / "ckpt.weights.h5"))
    assert name.endswith(".weights.h5") and fileio.is_partial(os.path.basename(name))


def test_write_json_rejects_nan(tmp_path):
    with pytest.raises(ValueError):
        fileio.write_json(str(tmp_path / "s.json"), {"loss": float("nan")})
    assert not os.listdir(tmp_path)


def test_stale_partials_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".model.keras.partial-{dead_pid}-abcd.keras"
    stale.write_text("x")
    live = tmp_path / f".model.keras.partial-{os.getpid()}-abcd.keras"
    live.write_text("x")
    removed = fileio.remove_stale_partials(str(tmp_path))
    assert removed == [str(stale)] and live.exists()


def test_atomic_directory_refuses_existing_unless_overwrite(tmp_path):
    target = tmp_path / "1"
    with fileio.atomic_directory(str(target)) as d:
        open(os.path.join(d, "f"), "w").write("one")
    with pytest.raises(FileExistsError):
        with fileio.atomic_directory(str(target)):
            pass
    with fileio.atomic_directory(str(target), overwrite=True) as d:
        open(os.path.join(d, "f"), "w").write("two")
    assert (target / "f").read_text() == "two" and sorted(os.listdir(tmp_path)) == ["1"]


@pytest.mark.parametrize("value", [True, 0, 1.5, "3", None])
def test_check_int_rejects(value):
    with pytest.raises(ValueError, match=r"`filters` must be an integer >= 1\. Received: filters="):
        checks.check_int("filters", value, minimum=1)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 0.0, -1, True])
def test_check_number_rejects(value):
    with pytest.raises(ValueError, match="Received: lr="):
        checks.check_number("lr", value, minimum=0, exclusive_minimum=True)


def test_check_choice_lists_choices():
    with pytest.raises(ValueError, match="one of 'ppo', 'random'"):
        checks.check_choice("strategy", "bayes", ["ppo", "random"])
    assert checks.check_choice("strategy", "ppo", ["ppo", "random"]) == "ppo"
