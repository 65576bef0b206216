"""Every user-caused fault of `nasnet`: one line naming the file or value, exit 2; `--debug` shows the traceback.

One mechanism (`nasnet_keras.errors`, used by `cli.main`) covers every sub-command, so
the cases below come from several sub-commands and from each branch of the OSError
family; a bug (any other exception) keeps its traceback.
"""

import errno
import os

import pytest

from nasnet_keras import cli

TINY_VARIANT = ["--model", "cifar_6@768", "--set", "num_blocks=1", "--set", "penultimate_filters=48",
                "--set", "input_shape=(8, 8, 3)"]


def run(capsys, argv):
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.err.strip().splitlines()


def one_line(capsys, argv, *expected):
    code, lines = run(capsys, argv)
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"nasnet {argv[0]}: error: "), lines
    for text in expected:
        assert text in lines[0], lines[0]
    assert "Traceback" not in lines[0]
    return lines[0]


def test_files_that_are_damaged_misplaced_or_of_the_wrong_kind(tmp_path, capsys):
    truncated = tmp_path / "truncated.weights.h5"
    truncated.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)  # an HDF5 signature, then nothing
    line = one_line(capsys, ["export", *TINY_VARIANT, "--weights", str(truncated), "--out", str(tmp_path / "o")],
                    str(truncated), "not a readable HDF5")
    assert "truncated" in line and not (tmp_path / "o").exists()
    legacy = tmp_path / "legacy.h5"
    legacy.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
    one_line(capsys, ["train", "--model", "cifar_6@768", "--dataset", "fashion_mnist", "--directory",
                      str(tmp_path / "run"), "--weights", str(legacy)], str(legacy), "not a readable HDF5")
    assert not (tmp_path / "run").exists()

    corrupt = tmp_path / "model.keras"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    one_line(capsys, ["export", "--model", str(corrupt), "--out", str(tmp_path / "out")], str(corrupt),
             "not a .keras archive")
    one_line(capsys, ["profile", str(corrupt)], str(corrupt), "not a .keras archive")

    folder = tmp_path / "cells.json"
    folder.mkdir()
    one_line(capsys, ["profile", str(folder)], str(folder), "Is a directory", "a file was expected")

    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    one_line(capsys, ["profile", str(binary)], str(binary), "not a genotype JSON file")

    afile = tmp_path / "afile"
    afile.write_text("x")
    one_line(capsys, ["export", *TINY_VARIANT, "--out", str(afile / "served")], str(afile / "served"),
             "Not a directory", "a part of the path is a file")
    assert not afile.is_dir() and afile.read_text() == "x"


def test_bad_values(tmp_path, capsys):
    one_line(capsys, ["export", "--model", "cifar_6@768", "--set", "bogus=1", "--out", str(tmp_path / "o")],
             "Unknown override(s) 'bogus'", "Accepted: input_shape")
    one_line(capsys, ["demo", "--trials", "0", "--directory", str(tmp_path / "demo")], "--trials", "Received")
    one_line(capsys, ["demo", "--final-epochs", "-1", "--directory", str(tmp_path / "demo")], "--final-epochs")
    assert not (tmp_path / "demo").exists()
    one_line(capsys, ["train", "--model", "cifar_6@768", "--dataset", "fashion_mnist", "--directory",
                      str(tmp_path / "run"), "--set", "base_learning_rate=inf"], "base_learning_rate", "finite")
    one_line(capsys, ["profile", "nasnet_z"], "Unknown variant 'nasnet_z'")


@pytest.mark.parametrize("error, hint", [
    (PermissionError(errno.EACCES, "Permission denied"), "check its permissions"),
    (PermissionError(errno.EPERM, "Operation not permitted"), "chattr"),
    (OSError(errno.EROFS, "Read-only file system"), "read-only"),
    (OSError(errno.ENOSPC, "No space left on device"), "free some space"),
])
def test_each_oserror_names_the_path_and_what_to_do(tmp_path, capsys, monkeypatch, error, hint):
    """Root ignores file modes, so the errors of an unwritable directory are injected where it is created."""
    target = str(tmp_path / "served")
    real = os.makedirs

    def makedirs(path, *args, **kwargs):
        if os.fspath(path).startswith(target):
            error.filename = os.fspath(path)
            raise error
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "makedirs", makedirs)
    one_line(capsys, ["demo", "--skip-table", "--directory", target], repr(target), error.strerror, hint)


def test_debug_shows_the_traceback_and_bugs_keep_theirs(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "g.json"
    folder.mkdir()
    with pytest.raises(IsADirectoryError):
        cli.main(["--debug", "profile", str(folder)])
    monkeypatch.setenv("NASNET_DEBUG", "1")
    with pytest.raises(IsADirectoryError):
        cli.main(["profile", str(folder)])
    monkeypatch.delenv("NASNET_DEBUG")

    from nasnet_keras import variants_cli

    def bug(args):
        raise KeyError("an internal bug")

    monkeypatch.setattr(variants_cli, "_cmd_variants", bug)
    with pytest.raises(KeyError):
        cli.main(["variants"])  # not a user fault: the traceback is the useful report


def test_profile_accepts_a_genotype_json(tmp_path, capsys):
    from nasnet_keras import Genotype

    cell = Genotype.from_blocks(normal=[(0, 1, "sep_conv_3x3", "identity")],
                                reduction=[(0, 1, "sep_conv_3x3", "max_pool_3x3")], name="found")
    cell.save(str(tmp_path / "found.json"))
    assert cli.main(["profile", str(tmp_path / "found.json"), "--variant", "cifar_6@768"]) == 0
    out = capsys.readouterr().out
    assert f"genotype found[{cell.id}], B=1" in out and "'cifar_6@768' skeleton" in out and "Mult-Adds" in out
