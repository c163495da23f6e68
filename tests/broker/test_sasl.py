"""SASL on a SASL_PLAINTEXT listener (broker/sasl.py, server.Connection): the exchange checked
against an independent SCRAM client (scramp), then a real broker process with `--sasl-port` and
real clients: confluent-kafka's SCRAM and PLAIN logins, a refused password, what a connection may
send before it authenticates, a v0 handshake's raw tokens, and the PLAINTEXT listener beside it.
127.0.0.1 only; every process is stopped."""

from __future__ import annotations

import base64
import hashlib
import os
import struct

import pytest
import scramp
from confluent_kafka import KafkaError, Producer

from helpers import BrokerProcess, listen_port, wait_for
from rawclient import RawClient
from sandbox.broker.sasl import MECHANISMS, SaslFailed, SaslSession
from sandbox.client import KafkaClient
from sandbox.protocol import build, request_class
from sandbox.protocol.errors import (
    ILLEGAL_SASL_STATE, NONE, SASL_AUTHENTICATION_FAILED, UNSUPPORTED_SASL_MECHANISM,
)

DIGEST = {1: "sha256", 2: "sha512"}


def credential(password: str, mechanism: int, iterations: int = 4096, salt: bytes | None = None) -> dict:
    """A credential as the coordinator stores it (coordinator/scram.py)."""
    salt = salt if salt is not None else os.urandom(30)
    digest = DIGEST[mechanism]
    salted = hashlib.pbkdf2_hmac(digest, password.encode(), salt, iterations)
    import hmac
    client_key = hmac.new(salted, b"Client Key", digest).digest()
    return {"iterations": iterations, "salt": salt.hex(), "stored_key": hashlib.new(digest, client_key).hexdigest(),
            "server_key": hmac.new(salted, b"Server Key", digest).hexdigest()}


def store(**users: str):
    creds = {(u, m): credential(p, m) for u, p in users.items() for m in (1, 2)}
    return lambda user, mechanism: creds.get((user, mechanism))


# ---- the exchange, pure --------------------------------------------------------------------------
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_login_against_an_independent_client(mechanism):
    s = SaslSession(store(alice="alice-secret"))
    assert s.handshake(mechanism) == NONE
    c = scramp.ScramClient([mechanism], "alice", "alice-secret")
    server_first = s.step(c.get_client_first().encode())
    c.set_server_first(server_first.decode())
    assert s.principal is None
    server_final = s.step(c.get_client_final().encode())
    c.set_server_final(server_final.decode())   # raises unless the server proved it knows the key
    assert s.principal == "User:alice" and s.authenticated


@pytest.mark.parametrize("user, password", [("alice", "wrong"), ("mallory", "alice-secret")])
def test_scram_refuses_a_wrong_password_and_an_unknown_user_alike(user, password):
    s = SaslSession(store(alice="alice-secret"))
    s.handshake("SCRAM-SHA-256")
    c = scramp.ScramClient(["SCRAM-SHA-256"], user, password)
    with pytest.raises(SaslFailed) as e:
        c.set_server_first(s.step(c.get_client_first().encode()).decode())
        s.step(c.get_client_final().encode())
    assert e.value.error_code == SASL_AUTHENTICATION_FAILED
    assert e.value.message == ("Authentication failed during authentication due to invalid credentials with "
                               "SASL mechanism SCRAM-SHA-256")
    assert s.principal is None


def _scram_by_hand(s: SaslSession, user: str, password: str, nonce_prefix: str = "", nonce_suffix: str = "") -> bytes:
    """A SCRAM-SHA-256 client written out; the nonce it sends back can be altered (librdkafka before
    2.6.1 puts its own in front once more) while its proof stays right for what it sends."""
    import hmac
    cnonce = "rOprNGfwEbeRWgbNEkqO"
    first_bare = f"n={user},r={cnonce}"
    server_first = s.step(f"n,,{first_bare}".encode()).decode()
    attrs = dict(a.split("=", 1) for a in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    without_proof = f"c=biws,r={nonce_prefix}{attrs['r']}{nonce_suffix}"
    auth = f"{first_bare},{server_first},{without_proof}".encode()
    signature = hmac.new(hashlib.sha256(client_key).digest(), auth, "sha256").digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()
    return s.step(f"{without_proof},p={proof}".encode())


def test_scram_nonce_rules_and_escaped_user_names():
    # librdkafka before 2.6.1 repeats its own nonce in front of the server's, with a proof that is
    # right for what it sent: Kafka 4 refuses that, and so does the sandbox, saying why
    s = SaslSession(store(alice="alice-secret"))
    s.handshake("SCRAM-SHA-256")
    with pytest.raises(SaslFailed) as e:
        _scram_by_hand(s, "alice", "alice-secret", nonce_prefix="rOprNGfwEbeRWgbNEkqO")
    assert e.value.error_code == SASL_AUTHENTICATION_FAILED and "librdkafka before 2.6.1" in e.value.reason
    assert e.value.message.startswith("Authentication failed during authentication due to invalid credentials")
    # any other nonce, with a proof right for it: a replay, refused
    s = SaslSession(store(alice="alice-secret"))
    s.handshake("SCRAM-SHA-256")
    with pytest.raises(SaslFailed) as e:
        _scram_by_hand(s, "alice", "alice-secret", nonce_suffix="X")
    assert e.value.reason == "the SCRAM nonce does not match the server's"
    # the same exchange with the nonce as sent: logged in (the two above fail for the nonce alone)
    s = SaslSession(store(alice="alice-secret"))
    s.handshake("SCRAM-SHA-256")
    assert _scram_by_hand(s, "alice", "alice-secret").startswith(b"v=") and s.principal == "User:alice"
    # RFC 5802 escapes: "=2C" is ',' and "=3D" is '='
    s = SaslSession(store(**{"bob,x=y": "pw"}))
    s.handshake("SCRAM-SHA-256")
    _scram_by_hand(s, "bob=2Cx=3Dy", "pw")
    assert s.principal == "User:bob,x=y"


@pytest.mark.parametrize("first, words", [
    ("n,,n=alice,r=abc,ext=1", None),                        # an extension Kafka ignores: logged in
    ("n,a=alice,n=alice,r=abc", None),                       # an authorization id equal to the user
    ("n,a=bob,n=alice,r=abc", "different from username"),    # Kafka's words for acting as another user
    ("n,,m=ext,n=alice,r=abc", "invalid credentials"),       # a mandatory extension
    ("n,,n=alice,r=", "invalid credentials"),                # an empty nonce
    ("n,,r=abc,n=alice", "invalid credentials"),             # out of order
    ("n,alice,n=alice,r=abc", "invalid credentials"),        # an authorization id without a=
    ("y,,n=alice,r=abc", "invalid credentials"),             # channel binding flags are not offered
    ("p=tls-unique,,n=alice,r=abc", "invalid credentials"),
    ("n,,n=alice,r=abc,tokenauth=true", "invalid credentials"),   # delegation tokens are not offered
])
def test_scram_first_messages_as_kafka_parses_them(first, words):
    s = SaslSession(store(alice="alice-secret"))
    s.handshake("SCRAM-SHA-256")
    if words is None:
        assert s.step(first.encode()).startswith(b"r=abc")
        return
    with pytest.raises(SaslFailed) as e:
        s.step(first.encode())
    assert e.value.error_code == SASL_AUTHENTICATION_FAILED and words in e.value.message, e.value.message


def test_scram_final_message_checks_the_channel_binding_header():
    s = SaslSession(store(alice="alice-secret"), nonce=lambda: "srv")
    s.handshake("SCRAM-SHA-256")
    s.step(b"n,,n=alice,r=abc")
    with pytest.raises(SaslFailed) as e:   # c= must be the base64 of the first message's "n,,"
        s.step(b"c=eSws,r=abcsrv,p=" + base64.b64encode(b"\0" * 32))
    assert "malformed" in e.value.reason and s.principal is None


def test_plain_login_is_checked_against_the_scram_credentials():
    creds = store(alice="alice-secret")
    ok = SaslSession(creds)
    assert ok.handshake("PLAIN") == NONE
    assert ok.step(b"\0alice\0alice-secret") == b"" and ok.principal == "User:alice"
    also = SaslSession(creds)
    also.handshake("PLAIN")
    also.step(b"alice\0alice\0alice-secret")   # an authorization id equal to the user is allowed
    assert also.principal == "User:alice"
    # refused in the words of Kafka's PlainSaslServer
    for token, words in [(b"\0alice\0wrong", "Authentication failed: Invalid username or password"),
                         (b"\0nobody\0alice-secret", "Authentication failed: Invalid username or password"),
                         (b"bob\0alice\0alice-secret",
                          "Authentication failed: Client requested an authorization id that is different from username"),
                         (b"alice-secret", "Invalid SASL/PLAIN response: expected 3 tokens, got 1"),
                         (b"\0\0x", "Authentication failed: username not specified"),
                         (b"\0alice\0", "Authentication failed: password not specified"),
                         (b"\0alice\0\xff\xfe", "Authentication failed: Invalid username or password")]:
        s = SaslSession(creds)
        s.handshake("PLAIN")
        with pytest.raises(SaslFailed) as e:
            s.step(token)
        assert e.value.error_code == SASL_AUTHENTICATION_FAILED and e.value.message == words, (token, e.value.message)
        assert "\n" not in e.value.message and s.principal is None
    with pytest.raises(SaslFailed) as e:
        s = SaslSession(creds)
        s.handshake("PLAIN")
        s.step(b"\0nobody\0x")
    assert "user 'nobody' has no SCRAM credentials" in e.value.reason   # the sandbox's own words, for status


def test_handshake_and_order_rules():
    s = SaslSession(store())
    assert s.handshake("GSSAPI") == UNSUPPORTED_SASL_MECHANISM and s.mechanism is None
    with pytest.raises(SaslFailed) as e:
        s.step(b"\0a\0b")    # before a handshake
    assert e.value.error_code == ILLEGAL_SASL_STATE
    assert s.handshake("PLAIN") == NONE
    assert s.handshake("SCRAM-SHA-256") == ILLEGAL_SASL_STATE   # one handshake per connection
    with pytest.raises(SaslFailed):
        s.step(b"n,,n=a,r=b")   # malformed for PLAIN: a failure, not a traceback


# ---- a real broker process -------------------------------------------------------------------
@pytest.fixture
def sasl_broker(tmp_path):
    sasl_port = listen_port()
    b = BrokerProcess(tmp_path / "data", extra_args=["--sasl-port", str(sasl_port)]).start()
    b.sasl_port = sasl_port
    try:
        wait_for(lambda: _port_open(sasl_port), 15, what="the SASL listener")
        with KafkaClient(b.bootstrap) as c:
            c.set_scram_passwords({"alice": "alice-secret"})
            c.create_topic("t", 2)
        yield b
    finally:
        b.stop()


def _port_open(port: int) -> bool:
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _producer(port: int, mechanism: str, password: str, errors: list) -> Producer:
    return Producer({"bootstrap.servers": f"127.0.0.1:{port}", "security.protocol": "SASL_PLAINTEXT",
                     "sasl.mechanism": mechanism, "sasl.username": "alice", "sasl.password": password,
                     "message.timeout.ms": 5000, "error_cb": lambda e: errors.append(e), "log_level": 0})


@pytest.mark.parametrize("mechanism", list(MECHANISMS))
def test_confluent_kafka_logs_in_and_is_given_the_sasl_addresses(sasl_broker, mechanism):
    errors: list = []
    p = _producer(sasl_broker.sasl_port, mechanism, "alice-secret", errors)
    md = p.list_topics(timeout=10)
    # Metadata on the SASL listener names every broker's SASL address, as Kafka's listeners do
    assert [(b.host, b.port) for b in md.brokers.values()] == [("127.0.0.1", sasl_broker.sasl_port)]
    delivered: list = []
    p.produce("t", b"hello-" + mechanism.encode(), partition=1, on_delivery=lambda e, m: delivered.append(e))
    assert p.flush(10) == 0 and delivered == [None], (delivered, errors)
    assert not errors, errors
    with KafkaClient(sasl_broker.bootstrap) as c:   # the PLAINTEXT listener still answers without logging in
        assert [b.port for b in c.metadata(["t"])[0].brokers] == [sasl_broker.port]


def test_a_wrong_password_is_refused_with_kafkas_words(sasl_broker):
    errors: list = []
    p = _producer(sasl_broker.sasl_port, "SCRAM-SHA-512", "not-the-password", errors)
    p.produce("t", b"x")
    p.flush(6)
    auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    assert auth, errors
    assert ("Authentication failed during authentication due to invalid credentials with SASL mechanism "
            "SCRAM-SHA-512") in auth[0].str()
    # the broker says why in its log, and once as an EVENT the supervisor shows in `sandbox status`
    log = sasl_broker.log_text()
    assert "refused (SCRAM-SHA-512): wrong password for user 'alice'" in log
    assert log.count("EVENT sasl-login-failed") == 1, log   # librdkafka retried: reported once per 10 s


def test_the_common_mix_ups_are_told_apart_in_the_log(sasl_broker):
    """A plain client given the SASL address, a SASL client given the plain one, an unknown user:
    the client hears Kafka's words, the broker's log (and so `sandbox status`) says which it was."""
    def metadata(conf: dict) -> None:
        p = Producer({**conf, "log_level": 0, "error_cb": lambda e: None})
        with pytest.raises(Exception):   # never answered: the login is refused
            p.list_topics(timeout=3)

    metadata({"bootstrap.servers": f"127.0.0.1:{sasl_broker.sasl_port}"})
    metadata({"bootstrap.servers": sasl_broker.bootstrap, "security.protocol": "SASL_PLAINTEXT",
              "sasl.mechanism": "PLAIN", "sasl.username": "alice", "sasl.password": "alice-secret"})
    metadata({"bootstrap.servers": f"127.0.0.1:{sasl_broker.sasl_port}", "security.protocol": "SASL_PLAINTEXT",
              "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "mallory", "sasl.password": "x"})
    log = sasl_broker.log_text()
    assert "came before logging in: set the client's security.protocol=SASL_PLAINTEXT" in log
    assert "a SASL client connected to a PLAINTEXT listener: give it the SASL_PLAINTEXT bootstrap" in log
    assert "user 'mallory' has no SCRAM credentials" in log
    assert log.count("EVENT sasl-login-failed") == 3, log


def _request(name: str, version: int, **data):
    return build(request_class(name, version), data)


def test_before_logging_in_only_api_versions_and_the_exchange_are_answered(sasl_broker):
    with RawClient(sasl_broker.sasl_port) as rc:
        versions = rc.request(_request(18, 3, client_software_name="t", client_software_version="1"))
        keys = {k.api_key: (k.min_version, k.max_version) for k in versions.api_keys}
        assert keys[17] == (0, 1) and keys[36] == (0, 2)
        rc.request(_request(3, 12, topics=None, allow_auto_topic_creation=False,
                            include_topic_authorized_operations=False), expect_response=False)
        assert rc.is_closed()
    with RawClient(sasl_broker.sasl_port) as rc:   # an unknown mechanism: answered with the list, then closed
        resp = rc.request(_request(17, 1, mechanism="GSSAPI"))
        assert resp.error_code == UNSUPPORTED_SASL_MECHANISM and list(resp.mechanisms) == list(MECHANISMS)
        assert rc.is_closed()
    with RawClient(sasl_broker.sasl_port) as rc:   # a refused login: answered, then closed
        assert rc.request(_request(17, 1, mechanism="PLAIN")).error_code == NONE
        resp = rc.request(_request(36, 2, auth_bytes=b"\0alice\0nope"))
        assert resp.error_code == SASL_AUTHENTICATION_FAILED and "Invalid username or password" in resp.error_message
        assert rc.is_closed()


def _frame(rc: RawClient, body) -> bytes:
    from sandbox.protocol import RequestHeader, encode_request
    rc.corr += 1
    return encode_request(RequestHeader(body.__api_key__, body.__version__, rc.corr, "raw"), body)


@pytest.mark.parametrize("password, answered", [("alice-secret", True), ("wrong", False)])
def test_requests_sent_behind_the_login_wait_for_it(sasl_broker, password, answered):
    """Handshake, login (PLAIN: checked off the event loop) and Metadata in one write: the Metadata
    is answered only after a good login, never after a bad one."""
    from sandbox.protocol import decode_response
    with RawClient(sasl_broker.sasl_port) as rc:
        metadata = _request(3, 12, topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False)
        rc.send_raw(_frame(rc, _request(17, 1, mechanism="PLAIN"))
                    + _frame(rc, _request(36, 2, auth_bytes=f"\0alice\0{password}".encode())) + _frame(rc, metadata))
        assert decode_response(rc.recv_frame(), 17, 1)[1].error_code == NONE
        login = decode_response(rc.recv_frame(), 36, 2)[1]
        assert (login.error_code == NONE) == answered, login
        if answered:
            md = decode_response(rc.recv_frame(), 3, 12)[1]
            assert "t" in {t.name for t in md.topics}
        else:
            assert rc.is_closed()


def test_api_versions_asked_again_lower_after_unsupported_version(sasl_broker):
    """A client newer than the broker asks ApiVersions at a version it lacks, gets UNSUPPORTED_VERSION
    (in v0's shape) and asks again lower, as librdkafka and Java do: the SASL listener allows it."""
    from sandbox.protocol import decode_response
    with RawClient(sasl_broker.sasl_port) as rc:
        rc.corr += 1
        body = struct.pack(">hhih", 18, 99, rc.corr, 3) + b"new" + b"\x00"
        rc.send_raw(struct.pack(">i", len(body)) + body)
        first = decode_response(rc.recv_frame(), 18, 0)[1]
        assert first.error_code == 35   # UNSUPPORTED_VERSION
        assert rc.request(_request(18, 3, client_software_name="t", client_software_version="1")).error_code == NONE
        assert rc.request(_request(17, 1, mechanism="PLAIN")).error_code == NONE


def test_out_of_order_exchanges_close_the_connection_as_kafka_does(sasl_broker):
    with RawClient(sasl_broker.sasl_port) as rc:   # SaslAuthenticate before SaslHandshake: closed, no answer
        rc.request(_request(36, 2, auth_bytes=b"\0alice\0alice-secret"), expect_response=False)
        assert rc.is_closed()
    with RawClient(sasl_broker.sasl_port) as rc:   # ApiVersions after the handshake: closed
        assert rc.request(_request(17, 1, mechanism="PLAIN")).error_code == NONE
        rc.request(_request(18, 3, client_software_name="t", client_software_version="1"), expect_response=False)
        assert rc.is_closed()
    with RawClient(sasl_broker.sasl_port) as rc:   # a second handshake: closed
        assert rc.request(_request(17, 1, mechanism="PLAIN")).error_code == NONE
        rc.request(_request(17, 1, mechanism="PLAIN"), expect_response=False)
        assert rc.is_closed()


def test_a_v0_handshake_exchanges_raw_tokens(sasl_broker):
    with RawClient(sasl_broker.sasl_port) as rc:
        assert rc.request(_request(17, 0, mechanism="PLAIN")).error_code == NONE
        token = b"\0alice\0alice-secret"
        rc.send_raw(struct.pack(">i", len(token)) + token)
        assert rc.recv_frame() == b""   # PLAIN's empty answer, without a Kafka header
        md = rc.request(_request(3, 12, topics=None, allow_auto_topic_creation=False,
                                 include_topic_authorized_operations=False))
        assert {t.name for t in md.topics} >= {"t"}
        # after logging in, another exchange is refused as Kafka refuses it (no re-authentication)
        assert rc.request(_request(17, 1, mechanism="PLAIN")).error_code == ILLEGAL_SASL_STATE


def test_the_plaintext_listener_answers_sasl_requests_illegal_sasl_state(sasl_broker):
    with RawClient(sasl_broker.port) as rc:
        assert rc.request(_request(17, 1, mechanism="PLAIN")).error_code == ILLEGAL_SASL_STATE
        resp = rc.request(_request(36, 2, auth_bytes=b"\0alice\0alice-secret"))
        assert resp.error_code == ILLEGAL_SASL_STATE
        assert not rc.is_closed(0.3)   # the connection stays usable
        rc.request(_request(18, 3, client_software_name="t", client_software_version="1"))


def test_topics_apply_sets_the_declared_users_as_up_does(sasl_broker, tmp_path):
    """compose's `topics` service: `sandbox topics apply` gives [sasl] users their credentials too."""
    import subprocess
    import sys
    toml = tmp_path / "sandbox.toml"
    toml.write_text('[sasl]\nusers = { dave = "d-pw" }\n\n[topics.applied]\npartitions = 1\n', encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "sandbox", "topics", "apply", "--config", str(toml), "--bootstrap",
                        sasl_broker.bootstrap], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "set SASL credentials of user(s) dave" in r.stdout
    with KafkaClient(sasl_broker.bootstrap) as c:
        assert c.scram_users()["dave"] == {1, 2}
    errors: list = []
    p = Producer({"bootstrap.servers": f"127.0.0.1:{sasl_broker.sasl_port}", "security.protocol": "SASL_PLAINTEXT",
                  "sasl.mechanism": "PLAIN", "sasl.username": "dave", "sasl.password": "d-pw",
                  "error_cb": lambda e: errors.append(e), "log_level": 0})
    assert "applied" in p.list_topics(timeout=10).topics and not errors, errors


def test_sasl_enabled_mechanisms_narrows_what_is_offered(tmp_path):
    """[broker] sasl.enabled.mechanisms = SCRAM-SHA-512, as a production cluster may have it: PLAIN is
    refused with the list, and the broker says why."""
    sasl_port = listen_port()
    b = BrokerProcess(tmp_path / "data", options=["sasl.enabled.mechanisms=SCRAM-SHA-512"],
                      extra_args=["--sasl-port", str(sasl_port)]).start()
    try:
        wait_for(lambda: _port_open(sasl_port), 15, what="the SASL listener")
        with KafkaClient(b.bootstrap) as c:
            c.set_scram_passwords({"alice": "alice-secret"})
        with RawClient(sasl_port) as rc:
            resp = rc.request(_request(17, 1, mechanism="PLAIN"))
            assert resp.error_code == UNSUPPORTED_SASL_MECHANISM and list(resp.mechanisms) == ["SCRAM-SHA-512"]
            assert rc.is_closed()
        assert "'PLAIN' is not offered (sasl.enabled.mechanisms): use one of SCRAM-SHA-512" in b.log_text()
        errors: list = []
        assert _producer(sasl_port, "SCRAM-SHA-512", "alice-secret", errors).list_topics(timeout=10).brokers
        assert not errors, errors
    finally:
        b.stop()
