"""TF Serving's versioned layout: versions are never overwritten silently nor left half-written.

The tracing and saving are replaced by a stub here (a real one is exercised by the round-trip
tests), so each case costs milliseconds.
"""

from __future__ import annotations

import os
import stat

import pytest

from savedmodels import exporter as export_module
from savedmodels import export, next_version, read_model_card, versions


def _fake_save(facts, kind, top_k, path, **options):
    with open(os.path.join(path, "saved_model.pb"), "wb") as f:
        f.write(b"stub")
    return {}


def _failing_save(facts, kind, top_k, path, **options):
    _fake_save(facts, kind, top_k, path)
    os.makedirs(os.path.join(path, "variables"))
    with open(os.path.join(path, "variables", "variables.index"), "wb") as f:
        f.write(b"half")
    raise OSError("disk full (simulated)")


@pytest.fixture
def stub_save(monkeypatch):
    from savedmodels import model_card

    monkeypatch.setattr(export_module, "_write_savedmodel", _fake_save)
    monkeypatch.setattr(model_card, "_cost", lambda model: (0, 0))


def _hidden(base):
    return [name for name in os.listdir(base) if name.startswith(".")]


def test_versions_are_numbered_and_never_overwritten_silently(classifier, tmp_path, stub_save):
    base = str(tmp_path / "model")
    assert next_version(base) == 1 and versions(base) == []
    first = export(classifier, base)
    assert first.version == 1 and first.path == os.path.join(base, "1")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(first.path).st_mode) == 0o777 & ~umask  # readable by a server user
    second = export(classifier, base)
    assert second.version == 2 and versions(base) == [1, 2]
    os.makedirs(os.path.join(base, "not_a_version"))
    assert next_version(base) == 3

    marker = os.path.join(first.path, "marker")
    open(marker, "w").close()
    with pytest.raises(ValueError, match=r"1' already exists; pass overwrite=True .*next free: 3"):
        export(classifier, base, version=1)
    assert os.path.exists(marker)  # untouched

    replaced = export(classifier, base, version=1, overwrite=True, class_names=list("abcde"))
    assert not os.path.exists(marker) and read_model_card(replaced.path)["class_names"] == list("abcde")
    assert _hidden(base) == []


def test_failed_export_leaves_nothing(classifier, tmp_path, monkeypatch):
    monkeypatch.setattr(export_module, "_write_savedmodel", _failing_save)
    base = str(tmp_path / "model")
    with pytest.raises(OSError, match="disk full"):
        export(classifier, base, version=4)
    assert not os.path.exists(base)  # the base directory was created for this export: removed too

    os.makedirs(os.path.join(base, "1"))
    with pytest.raises(OSError, match="disk full"):
        export(classifier, base, version=1, overwrite=True)
    assert sorted(os.listdir(base)) == ["1"] and os.listdir(os.path.join(base, "1")) == []  # old version kept


def test_cli_refuses_existing_version_without_overwrite(classifier, tmp_path, capsys, stub_save):
    from nasnet_keras import cli

    model_path = str(tmp_path / "tiny.keras")
    classifier.save(model_path)
    base = str(tmp_path / "served")
    os.makedirs(os.path.join(base, "7"))
    code = cli.main(["export", "--model", model_path, "--out", base, "--version", "7"])
    assert code == 2
    assert "7' already exists; pass overwrite=True (CLI: --overwrite)" in capsys.readouterr().err
    assert os.listdir(os.path.join(base, "7")) == []

    assert cli.main(["export", "--model", model_path, "--out", base, "--version", "7", "--overwrite"]) == 0
    assert read_model_card(os.path.join(base, "7"))["source"] == model_path
    assert _hidden(base) == []


def test_cli_model_argument_errors(tmp_path, capsys):
    from nasnet_keras import cli

    out = str(tmp_path / "served")
    assert cli.main(["export", "--model", "no_such_variant", "--out", out]) == 2
    assert "is neither a variant name (mobile" in capsys.readouterr().err
    genotype = str(tmp_path / "g.json")
    from nasnet_keras.genotype import NASNET_A

    NASNET_A.save(genotype)
    assert cli.main(["export", "--model", genotype, "--out", out]) == 2
    assert "A genotype JSON needs --variant" in capsys.readouterr().err
    assert cli.main(["export", "--model", "mobile", "--out", out, "--set", "oops"]) == 2
    assert "--set expects FIELD=VALUE" in capsys.readouterr().err
    assert not os.path.exists(out)


def test_cli_builds_variants_and_genotypes_with_weights(tmp_path, stub_save, monkeypatch):
    """A variant name and a genotype JSON + weights both reach the exporter, weights loaded."""
    import numpy as np

    from nasnet_keras import cli, variants
    from nasnet_keras.genotype import NASNET_A

    exported_models = []
    real_export = export_module.export

    def spy(model, *args, **kwargs):  # `nasnet export` looks the function up when it runs
        exported_models.append(model)
        return real_export(model, *args, **kwargs)

    monkeypatch.setattr(export_module, "export", spy)
    tiny = ["--set", "num_blocks=1", "--set", "filters=4"]
    base = str(tmp_path / "variant")
    assert cli.main(["export", "--model", "cifar_6@768", "--out", base, *tiny]) == 0
    assert read_model_card(os.path.join(base, "1"))["variant"] == "cifar_6@768"

    trained = variants.build("cifar_6@768", num_blocks=1, filters=4)
    kernel = trained.get_layer("predictions").kernel
    kernel.assign(np.full(kernel.shape, 0.25, np.float32))
    weights = str(tmp_path / "trained.weights.h5")
    trained.save_weights(weights)
    genotype = str(tmp_path / "genotype.json")
    NASNET_A.save(genotype)
    base = str(tmp_path / "searched")
    assert cli.main(["export", "--model", genotype, "--variant", "cifar_6@768", "--weights", weights,
                     "--out", base, *tiny]) == 0
    assert np.all(exported_models[-1].get_layer("predictions").kernel.numpy() == 0.25)
    card = read_model_card(os.path.join(base, "1"))
    assert card["variant"] == "cifar_6@768" and card["source"] == genotype
