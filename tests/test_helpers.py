"""The tests' own helpers where a mistake would make other tests fail for nothing."""

import random

import helpers


def test_listen_port_never_hands_out_a_port_twice(monkeypatch):
    """A cluster draws its coordinator's port, then its brokers' block, before anything binds:
    with the same draw twice, broker 1 got the coordinator's port (seen in CI: it exited with
    "already in use" and its readiness check was answered by the coordinator)."""
    draws = iter([21000, 21000, 21001, 21002, 21003, 21010])
    monkeypatch.setattr(random, "randint", lambda a, b: next(draws))
    monkeypatch.setattr(helpers, "_HANDED_OUT", set())
    coordinator = helpers.listen_port()
    brokers = helpers.listen_port(3)
    assert coordinator == 21000
    assert not set(range(brokers, brokers + 3)) & {coordinator}
