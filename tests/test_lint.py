"""The whole tree passes ``ruff check`` under the configuration in ``pyproject.toml``."""

import subprocess
from pathlib import Path

import pytest

ruff_main = pytest.importorskip("ruff.__main__", reason="ruff is not installed (pip install -e '.[test]')")

ROOT = Path(__file__).resolve().parents[1]


def _ruff(*args, cwd=ROOT):
    return subprocess.run([ruff_main.find_ruff_bin(), "check", "--no-cache", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_tree_is_ruff_clean():
    proc = _ruff(".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_reports_a_planted_error(tmp_path):
    # guards the test above against a configuration that silently checks nothing: the project's own settings
    # must still flag an unused import and a redundant noqa
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\nx = 1  # noqa: E731\n")
    proc = _ruff("--config", str(ROOT / "pyproject.toml"), "--output-format", "concise", str(bad), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "F401" in proc.stdout and "RUF100" in proc.stdout, proc.stdout
