"""Loaded by every Python process started with this folder on PYTHONPATH (Python imports a
`sitecustomize` module at start-up): when SANDBOX_TEST_WINDOWS_FILES names a folder, files under it
get Windows' rules for the whole process (tests/winfiles.py): an open file cannot be removed or
renamed, nor the folder holding it, nor one SANDBOX_TEST_HELD_FILES lists (a file naming what
another program, a virus scanner say, holds open now). Each refusal also leaves a line on stderr,
in the service's log.
Used by tests/integration/test_windows_files.py to run real broker processes under those rules."""
import os

_root = os.environ.get("SANDBOX_TEST_WINDOWS_FILES")
if _root:
    import sys
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import winfiles
    winfiles.install(_root, setattr, report=True, held_by=os.environ.get("SANDBOX_TEST_HELD_FILES"))
    sys.stderr.write(f"{winfiles.VETO_MARK} file rules on for {_root}\n")
    del sys.path[0]
