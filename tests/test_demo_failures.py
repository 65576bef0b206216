"""`nasnet demo` when no child completes: one line with the reason and the first child's failure, exit 2.

keras-tuner stops a search whose children all fail with a RuntimeError ("Number of
consecutive failures exceeded the limit"); the demo turns that into
`tuner.search.NoChildCompleted`, which `cli.main` prints as a user fault. The children are
replaced by ones that always fail, in the ways real children fail (a bad value, a NaN loss,
out of memory); everything else (data, oracle, tuner, CLI) is real, at tiny sizes. The
demo's NAS-Bench-Graph comparison (stage 2a, a table under .data that `make` downloads) is
not what is tested and is skipped.
"""

import pytest

from nasnet_keras import cli
from tuner import search, strategy_demo
from tuner.children import ChildFailedError

TINY = ["--skip-table", "--trials", "2", "--num-blocks", "1", "--subset", "32", "--validation-size", "16"]


def failing_children(*errors):
    """A `train_child` that raises errors[0] for the first child, errors[1] for every later one."""
    calls = []

    def train_child(*args, **kwargs):
        calls.append(args[0])
        raise errors[min(len(calls), len(errors)) - 1]

    return train_child, calls


@pytest.fixture(autouse=True)
def no_tabular_comparison(monkeypatch):
    monkeypatch.setattr(strategy_demo, "compare_on_tabular", lambda *args, **kwargs: None)


@pytest.mark.parametrize("first, later, reason", [
    (ValueError("injected: filters must be even"), None, "ValueError: injected: filters must be even"),
    (ChildFailedError("loss became NaN at step 3", "nan"), None, "loss became NaN at step 3"),
    (ChildFailedError("out of memory: injected", "oom"), RuntimeError("a later child's error"),
     "out of memory: injected"),
])
def test_a_demo_whose_children_all_fail_says_why_in_one_line(tmp_path, monkeypatch, capsys, first, later, reason):
    train_child, calls = failing_children(first, later or first)
    monkeypatch.setattr(search, "train_child", train_child)
    directory = tmp_path / "demo"
    code = cli.main(["demo", *TINY, "--directory", str(directory)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(calls) == 2  # both children ran (and failed), then the search stopped
    line = err[-1]
    assert line.startswith("nasnet demo: error: no child completed: 2 of 2 children failed, so the search stopped "
                           "(keras-tuner: Number of consecutive failures exceeded the limit"), line
    assert "; the first, trial 0" in line and line.endswith(reason), line
    assert not any("Traceback" in text for text in err), err
    assert not (directory / "final_model.keras").exists() and not (directory / "summary.json").exists()


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    train_child, _ = failing_children(ValueError("injected"))
    monkeypatch.setattr(search, "train_child", train_child)
    with pytest.raises(search.NoChildCompleted, match="no child completed: 2 of 2") as error:
        cli.main(["--debug", "demo", *TINY, "--directory", str(tmp_path / "demo")])
    assert search.stopped_by_failures(error.value.__cause__)
