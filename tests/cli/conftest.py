"""What the CLI tests share: a sandbox project in a temp folder on free ports, always torn down."""

from __future__ import annotations

import pytest

from integration.stack_kit import make_project


@pytest.fixture
def project(tmp_path):
    proj = make_project(tmp_path / "proj")
    yield proj
    problems = proj.teardown()
    assert not problems, "\n".join(problems)
