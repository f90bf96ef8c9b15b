"""Fixtures of the Python package's tests: the amctq CLI they compare against, the repository."""

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _find_cli():
    given = os.environ.get("AMCTQ_CLI")
    if given:
        return given
    for build in ("build", "build-py"):
        p = ROOT / build / "tools" / "amctq" / "amctq"
        if p.exists():
            return str(p)
    return None


@pytest.fixture(scope="session")
def cli():
    """Runs `amctq ARGS...` and returns its stdout (JSON parsed when asked)."""
    exe = _find_cli()
    if exe is None:
        pytest.fail("no amctq tool: build it (tools/amctq) or set AMCTQ_CLI")

    def run(*args, as_json=False):
        r = subprocess.run([exe, *map(str, args)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout) if as_json else r.stdout

    return run


@pytest.fixture(scope="session")
def root():
    return ROOT
