"""Fixtures the integration tests share."""

from __future__ import annotations

import pytest

from .stack_kit import Project, make_project


@pytest.fixture
def projects(tmp_path):
    """Factory of sandbox projects on free ports; every one is brought down and checked for
    leftover processes, even when the test fails."""
    made: list[Project] = []

    def make(name: str = "proj", **kw) -> Project:
        p = make_project(tmp_path / name, **kw)
        made.append(p)
        return p

    yield make
    problems = []
    for p in made:
        problems += p.teardown()
    assert not problems, "\n".join(problems)
