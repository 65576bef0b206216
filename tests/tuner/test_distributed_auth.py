"""#16: only our workers reach the chief (token, TLS, settings check), and a bad client changes nothing."""

from __future__ import annotations

import os
import stat
import subprocess

import grpc
import pytest

from tests.tuner.distributed_helpers import SETTINGS, InProcessChief, run_one_trial, snapshot
from tuner import keras_tuner_internals as kti
from tuner.distributed import auth, protocol

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


def test_non_loopback_bind_needs_a_token_or_insecure(capsys):
    with pytest.raises(ValueError, match="reachable from the network.*--insecure.*KERASTUNER_ORACLE_IP='10.1.2.3'"):
        auth.Auth().check_bind("10.1.2.3")
    auth.Auth().check_bind("127.0.0.1")  # loopback: a generated token is enough
    auth.Auth(insecure=True).check_bind("10.1.2.3")
    assert "WARNING: --insecure" in capsys.readouterr().err
    auth.Auth(token=TOKEN).check_bind("10.1.2.3")
    assert "without TLS" in capsys.readouterr().err


def test_clients_without_the_token_or_of_another_search_change_nothing(token_chief):
    chief = token_chief
    before = snapshot(chief.project_dir)
    good = {"interceptors": [auth.TokenClientInterceptor(TOKEN)]}
    with pytest.raises(protocol.ChiefRefusedError, match="UNAUTHENTICATED.*no token"):
        chief.client("no-token")
    with pytest.raises(protocol.ChiefRefusedError, match="UNAUTHENTICATED.*wrong token"):
        chief.client("bad-token", interceptors=[auth.TokenClientInterceptor("w" * 40)])
    # keras-tuner's own client (plaintext, no token) cannot create or end trials either.
    stub = kti.service_grpc.OracleStub(grpc.insecure_channel(f"127.0.0.1:{chief.port}"))
    with pytest.raises(grpc.RpcError) as raised:
        stub.CreateTrial(kti.service_messages.CreateTrialRequest(tuner_id="intruder"), timeout=10)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # The token but another search's settings: refused by name, at Hello and on any call.
    other = {**SETTINGS, "seconds": 9.0, "search_space": {**SETTINGS["search_space"], "num_blocks": 2}}
    with pytest.raises(protocol.ChiefRefusedError, match=r"another search.*search_space.num_blocks: chief 1, "
                                                         r"worker 2.*seconds: chief 0.0, worker 9.0"):
        chief.client("other-search", settings=other, **good)
    sneaky = chief.client("sneaky", settings=other, hello=False, **good)
    with pytest.raises(protocol.ChiefRefusedError, match="FAILED_PRECONDITION.*another search"):
        sneaky.create_trial("sneaky")
    assert snapshot(chief.project_dir) == before  # trial files, oracle.json, controller weights: byte-identical
    assert chief.servicer.counters["unauthenticated"] == 3
    assert chief.servicer.counters["refused_settings"] == 2
    refusals = [line for line in chief.logs if "refused" in line]
    assert len(refusals) == 3 and all("ipv4:127.0.0.1:" in line for line in refusals)
    # With the token and the same settings it works.
    trial = run_one_trial(chief.client("good", **good))
    assert chief.tuner.oracle.trials[trial.trial_id].status == "COMPLETED"


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
        with pytest.raises(protocol.ChiefUnavailableError, match=f"chief at 127.0.0.1:{chief.port} did not answer"):
            chief.client("plaintext", chief_timeout=2.0, interceptors=[auth.TokenClientInterceptor(TOKEN)])
        no_client_cert = auth.Auth(token=TOKEN, tls_ca=c["ca.pem"]).client_options()
        with pytest.raises(protocol.ChiefUnavailableError):
            chief.client("no-client-cert", chief_timeout=2.0, **no_client_cert)
        assert snapshot(chief.project_dir) == before
        worker = auth.Auth(token=TOKEN, tls_ca=c["ca.pem"], tls_cert=c["client.pem"], tls_key=c["client.key"])
        trial = run_one_trial(chief.client("tls-worker", **worker.client_options()))
        assert chief.tuner.oracle.trials[trial.trial_id].status == "COMPLETED"
        assert any("(TLS," in line for line in chief.logs)
    finally:
        chief.stop()
    with pytest.raises(ValueError, match="--tls-cert and --tls-key go together"):
        auth.Auth(tls_cert=c["server.pem"])
