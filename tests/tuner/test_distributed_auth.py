"""#16: only our workers reach the chief (token, TLS, settings check), and a bad client changes nothing."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import types

import grpc
import pytest

from keras_tuner.engine.trial import Trial

from tests.tuner.distributed_helpers import SETTINGS, InProcessChief, free_port, run_one_trial, snapshot
from tuner import keras_tuner_internals as kti
from tuner.distributed import auth, protocol
from tuner.distributed.worker import ChiefClient
from tuner.oracles import WEIGHTS_FILE

TOKEN = "t" * 40


@pytest.fixture
def token_chief(tmp_path):
    chief = InProcessChief(tmp_path, server_options=auth.Auth(token=TOKEN).server_options())
    yield chief
    chief.stop()


def test_token_file_is_generated_0600_and_reused(tmp_path):
    first = auth.Auth(directory=str(tmp_path)).token(generate=True)
    path = tmp_path / auth.TOKEN_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert auth.Auth(directory=str(tmp_path)).token() == first  # a worker on the same directory reads it
    with pytest.raises(ValueError, match="too short"):
        auth.Auth(token="short").token()
    with pytest.raises(ValueError, match="No search token"):
        auth.Auth(directory=str(tmp_path / "elsewhere")).token()


def _cli_auth(*argv):
    """The Auth that `nasnet search ARGV` builds (the CLI's own parser and options path)."""
    from nasnet_keras.cli import build_parser
    from tuner.distributed import options

    return options.config_from_args(build_parser().parse_args(["search", *argv])).auth


def test_cli_reads_the_token_file_then_the_environment_then_the_directory(tmp_path, monkeypatch):
    directory = str(tmp_path / "search")
    in_directory = auth.write_token(os.path.join(directory, auth.TOKEN_FILE))
    token_file = tmp_path / "search.token"
    token_file.write_text("f" * 32 + "\n")
    monkeypatch.setenv(auth.TOKEN_ENV, " " + "e" * 32 + " ")
    assert _cli_auth("--directory", directory, "--auth-token-file", str(token_file)).token() == "f" * 32
    assert _cli_auth("--directory", directory).token() == "e" * 32
    monkeypatch.delenv(auth.TOKEN_ENV)
    assert _cli_auth("--directory", directory).token() == in_directory
    # Too short: the error names where the token came from and its length, never the secret itself.
    token_file.write_text("hunter2-secret\n")
    too_short = rf"--auth-token-file {re.escape(str(token_file))} is too short \(14 characters"
    with pytest.raises(ValueError, match=too_short) as raised:
        _cli_auth("--directory", directory, "--auth-token-file", str(token_file)).token()
    assert "hunter2" not in str(raised.value)
    monkeypatch.setenv(auth.TOKEN_ENV, "pass1234")
    with pytest.raises(ValueError, match=r"\$NASNET_SEARCH_TOKEN is too short \(8 characters") as raised:
        _cli_auth("--directory", directory).token()
    assert "pass1234" not in str(raised.value)
    with pytest.raises(ValueError, match=r"--auth-token-file .*missing.token: no such file"):
        _cli_auth("--auth-token-file", str(tmp_path / "missing.token")).token()


def test_non_loopback_bind_needs_a_token_or_insecure(capsys):
    with pytest.raises(ValueError, match="reachable from the network.*--insecure.*KERASTUNER_ORACLE_IP='10.1.2.3'"):
        auth.Auth().check_bind("10.1.2.3")
    auth.Auth().check_bind("127.0.0.1")  # loopback: a generated token is enough
    auth.Auth(insecure=True).check_bind("10.1.2.3")
    assert "WARNING: --insecure" in capsys.readouterr().err
    auth.Auth(token=TOKEN).check_bind("10.1.2.3")
    assert "without TLS" in capsys.readouterr().err


def _intruders(chief, tuner_id):
    """Clients that must not touch the search: no token, a wrong token, the token but another search."""
    other = {**SETTINGS, "seconds": 9.0, "search_space": {**SETTINGS["search_space"], "num_blocks": 2}}
    return {
        "no token": (chief.client(tuner_id, hello=False), "UNAUTHENTICATED.*no token"),
        "wrong token": (chief.client(tuner_id, hello=False, interceptors=[auth.TokenClientInterceptor("w" * 40)]),
                        "UNAUTHENTICATED.*a wrong token"),
        "other settings": (chief.client(tuner_id, settings=other, hello=False,
                                        interceptors=[auth.TokenClientInterceptor(TOKEN)]),
                           "FAILED_PRECONDITION.*another search"),
    }


def test_clients_without_the_token_or_of_another_search_change_nothing(token_chief):
    """A live trial one end away from a PPO update: no bad client can report, end or create anything."""
    chief, servicer = token_chief, token_chief.servicer
    good = chief.client("good", interceptors=[auth.TokenClientInterceptor(TOKEN)])
    run_one_trial(good, score=0.25)
    live = good.create_trial("good")  # RUNNING; its end completes the PPO batch (2) and updates the controller
    assert live.status == "RUNNING" and chief.tuner.oracle.ppo.num_updates == 0
    before = snapshot(chief.project_dir)
    assert {"oracle.json", WEIGHTS_FILE, f"trial_{live.trial_id}/trial.json"} <= set(before)
    who_before = (dict(servicer.sessions), dict(servicer.peers), set(servicer.last_seen))

    # Each intruder uses the good worker's id on its live trial: only the token / settings check stops it.
    for client, refused in _intruders(chief, "good").values():
        with pytest.raises(protocol.ChiefRefusedError, match=refused):
            client.hello()
        with pytest.raises(protocol.ChiefRefusedError, match=f"refused UpdateTrial.*{refused}"):
            client.update_trial(live.trial_id, {"val_accuracy": 0.99}, step=0)
        fake = Trial.from_proto(live.to_proto())
        fake.status = "COMPLETED"
        with pytest.raises(protocol.ChiefRefusedError, match=f"refused EndTrial.*{refused}"):
            client.end_trial(fake)
        with pytest.raises(protocol.ChiefRefusedError, match=f"refused CreateTrial.*{refused}"):
            client.create_trial("good")
        client.close()
    # A refused Hello under a new id leaves no trace either (no lease, session or peer recorded).
    with pytest.raises(protocol.ChiefRefusedError, match=r"another search.*search_space.num_blocks: chief 1, "
                                                         r"worker 2.*seconds: chief 0.0, worker 9.0"):
        _intruders(chief, "other-search")["other settings"][0].hello()
    # keras-tuner's own client (plaintext, no token, no metadata) cannot end the trial either.
    stub = kti.service_grpc.OracleStub(grpc.insecure_channel(f"127.0.0.1:{chief.port}"))
    with pytest.raises(grpc.RpcError) as raised:
        stub.EndTrial(kti.service_messages.EndTrialRequest(trial=live.to_proto()), timeout=10)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED

    assert snapshot(chief.project_dir) == before  # trial files, oracle.json, controller weights: byte-identical
    assert (dict(servicer.sessions), dict(servicer.peers), set(servicer.last_seen)) == who_before
    assert chief.tuner.oracle.trials[live.trial_id].status == "RUNNING" and chief.tuner.oracle.ppo.num_updates == 0
    assert servicer.counters["unauthenticated"] == 2 * 4 + 1
    assert servicer.counters["refused_settings"] == 4 + 1
    refusals = [line for line in chief.logs if "refused" in line]
    assert len(refusals) == 2 * 4 + 1 and all("ipv4:127.0.0.1:" in line for line in refusals)

    # The good worker finishes its trial: now the search does change (so the checks above can fail).
    good.update_trial(live.trial_id, {"val_accuracy": 0.75}, step=0)
    live.status = "COMPLETED"
    good.end_trial(live)
    after = snapshot(chief.project_dir)
    assert chief.tuner.oracle.trials[live.trial_id].status == "COMPLETED" and chief.tuner.oracle.ppo.num_updates == 1
    assert after[WEIGHTS_FILE] != before[WEIGHTS_FILE]
    assert after[f"trial_{live.trial_id}/trial.json"] != before[f"trial_{live.trial_id}/trial.json"]
    good.close()
    # What the benchmark reads: the chief's whole-process CPU over the trials and the token check's own time.
    stats = servicer.stats()
    assert stats["timed_ends"] == 2 and stats["span_cpu_seconds"] > 0
    assert stats["interceptor_calls"] >= 9 + 7 and 0 < stats["interceptor_seconds"] < stats["span_seconds"]


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A test CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl."""
    d = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
             "-subj", "/CN=test search CA", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"), ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext", cwd=d)
    return {name: str(d / name) for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


def test_mutual_tls_works_and_plaintext_or_unknown_clients_are_refused(tmp_path, certificates):
    c = certificates
    server = auth.Auth(token=TOKEN, tls_cert=c["server.pem"], tls_key=c["server.key"], tls_ca=c["ca.pem"])
    chief = InProcessChief(tmp_path, server_options=server.server_options())
    try:
        before = snapshot(chief.project_dir)
        # A plaintext worker: the chief closes the connection, and the error says to pass --tls-ca.
        with pytest.raises(protocol.ChiefUnavailableError, match=f"chief at 127.0.0.1:{chief.port} did not answer "
                                                                 r"Hello.*Socket closed.*if the chief serves TLS, "
                                                                 r"pass --tls-ca"):
            chief.client("plaintext", chief_timeout=1.0, interceptors=[auth.TokenClientInterceptor(TOKEN)])
        no_client_cert = auth.Auth(token=TOKEN, tls_ca=c["ca.pem"]).client_options()
        with pytest.raises(protocol.ChiefUnavailableError, match=r"TLS connection failed.*mutual TLS.*--tls-cert"):
            chief.client("no-client-cert", chief_timeout=1.0, **no_client_cert)
        # Nothing listening: no TLS hint, the address is the question.
        with pytest.raises(protocol.ChiefUnavailableError, match="Connection refused") as raised:
            ChiefClient(types.SimpleNamespace(objective=None, max_trials=None), SETTINGS, host="127.0.0.1",
                        port=free_port(), tuner_id="lost", chief_timeout=0.5, log=lambda line: None)
        assert "TLS" not in str(raised.value)
        assert snapshot(chief.project_dir) == before
        worker = auth.Auth(token=TOKEN, tls_ca=c["ca.pem"], tls_cert=c["client.pem"], tls_key=c["client.key"])
        trial = run_one_trial(chief.client("tls-worker", **worker.client_options()))
        assert chief.tuner.oracle.trials[trial.trial_id].status == "COMPLETED"
        assert any("(TLS," in line for line in chief.logs)
    finally:
        chief.stop()
    with pytest.raises(ValueError, match="--tls-cert and --tls-key go together"):
        auth.Auth(tls_cert=c["server.pem"])
