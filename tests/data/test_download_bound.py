"""A TFDS download runs under a time limit that holds and leaves no debris, offline.

No internet is needed: the real child process and the real TFDS builder run, and the
network is made to fail in three ways: a proxy at an unroutable address (TFDS retries, as
offline), a DownloadManager that writes partial files and then blocks forever, and one
that writes partial files and fails at once. Entries that were in the TFDS data directory
before the attempt are kept.
"""

import os
import textwrap
import time

import pytest

from nasnet_keras import data
from nasnet_keras.data import download, sources

FAKE = textwrap.dedent('''
    import os, time
    mode = os.environ.get("FAKE_TFDS_DOWNLOAD")
    if mode:
        import tensorflow_datasets as tfds

        def fake(self, url_or_urls):
            partial = os.path.join(str(self.download_dir), "cifar10")
            os.makedirs(partial, exist_ok=True)
            with open(os.path.join(partial, "archive.tar.gz.tmp.123"), "wb") as f:
                f.write(b"x" * 1000)
            open(os.environ["FAKE_TFDS_MARKER"], "w").close()
            if mode == "block":
                time.sleep(3600)
            raise ConnectionError("fake: the network is unreachable")

        tfds.download.DownloadManager.download = fake
        tfds.download.DownloadManager.download_and_extract = fake
''')


def listing(path):
    return sorted(os.path.relpath(os.path.join(root, name), path)
                  for root, dirs, files in os.walk(path) for name in dirs + files)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No data directory named; TFDS' default directory holds another dataset and a cached file."""
    default = tmp_path / "tfds"
    (default / "downloads").mkdir(parents=True)
    (default / "downloads" / "kept.tar.gz").write_bytes(b"an earlier download")
    (default / "mnist" / "3.0.1").mkdir(parents=True)
    (default / "mnist" / "3.0.1" / "dataset_info.json").write_text("{}")
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(FAKE)
    monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(default))
    monkeypatch.setenv("PYTHONPATH", str(hooks))
    monkeypatch.setenv("FAKE_TFDS_MARKER", str(tmp_path / "reached"))
    durations = []
    real = sources._download_tfds

    def timed(*args):
        start = time.monotonic()
        try:
            return real(*args)
        finally:
            durations.append(time.monotonic() - start)

    monkeypatch.setattr(sources, "_download_tfds", timed)
    return default, durations


@pytest.mark.parametrize("case, limit", [("unroutable proxy", 3), ("blocking download", 15)])
def test_a_stopped_download_is_bounded_and_leaves_nothing(offline, tmp_path, monkeypatch, capsys, case, limit):
    default, durations = offline
    before = listing(default)
    monkeypatch.setenv(download.DOWNLOAD_TIMEOUT_ENV, str(limit))
    if case == "unroutable proxy":
        for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
            monkeypatch.setenv(name, "http://10.255.255.1:9")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
    else:
        monkeypatch.setenv("FAKE_TFDS_DOWNLOAD", "block")
    with pytest.raises(data.DatasetNotFoundError) as error:
        data.load("cifar10", "test")
    message = str(error.value)
    assert "\n" not in message, message
    assert message.startswith("Dataset 'cifar10' (split 'test') could not be loaded: the TensorFlow Datasets "
                              f"download into {default} did not finish within {limit} s"), message
    assert "Tried: TensorFlow Datasets 'cifar10' in TFDS' default data_dir (download=False); a download" in message
    assert "pass --data-dir DIR" in message and download.DOWNLOAD_TIMEOUT_ENV in message
    assert limit <= durations[0] < limit + 10, durations
    if case == "blocking download":
        assert (tmp_path / "reached").exists()  # the partial files were written before the stop
    assert listing(default) == before
    assert f"stops after {limit} s" in capsys.readouterr().err


def test_a_failed_download_names_the_reason_and_leaves_nothing(offline, tmp_path, monkeypatch):
    default, durations = offline
    before = listing(default)
    monkeypatch.setenv("FAKE_TFDS_DOWNLOAD", "fail")
    monkeypatch.setenv(download.DOWNLOAD_TIMEOUT_ENV, "60")
    with pytest.raises(data.DatasetNotFoundError) as error:
        data.load("cifar10", "test")
    message = str(error.value)
    assert "download into " + str(default) + ": ConnectionError: fake: the network is unreachable" in message
    assert "(its partial files were removed)" in message and "How to get it:" in message
    assert (tmp_path / "reached").exists() and durations[0] < 60
    assert listing(default) == before
    # A default directory that did not exist is not left behind either.
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "new_default"))
    with pytest.raises(data.DatasetNotFoundError, match="fake: the network is unreachable"):
        data.load("cifar10", "test")
    assert not (tmp_path / "new_default").exists()


def test_the_limit_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv(download.DOWNLOAD_TIMEOUT_ENV, raising=False)
    assert download.download_timeout() == download.DEFAULT_TIMEOUT_S
    assert download.download_timeout(manual=True) is None  # ImageNet's local preparation takes hours
    for text, value in (("2.5", 2.5), (" 30 ", 30.0), ("none", None), ("None", None)):
        monkeypatch.setenv(download.DOWNLOAD_TIMEOUT_ENV, text)
        assert download.download_timeout() == value
        assert download.download_timeout(manual=True) == value
    for text in ("0", "-1", "inf", "nan", "ten", "1e999"):
        monkeypatch.setenv(download.DOWNLOAD_TIMEOUT_ENV, text)
        with pytest.raises(ValueError, match=f"must be a positive number of seconds or 'none'. Received: "
                                             f"{download.DOWNLOAD_TIMEOUT_ENV}={text!r}"):
            download.download_timeout()
