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


def _exported_functions():
    """(qualified name, function) for every function named in a module's ``__all__`` (each once)."""
    import importlib
    import inspect
    import pkgutil

    import sgtheory

    seen = {}
    names = ["sgtheory"] + [m.name for m in pkgutil.walk_packages(sgtheory.__path__, "sgtheory.")]
    for name in names:
        leaf = name.rsplit(".", 1)[-1]
        if leaf.startswith("_"):  # private modules and __main__ (importing it runs the command line)
            continue
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr)
            if inspect.isfunction(obj):
                seen.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return sorted(seen.items())


def test_exported_functions_have_args_and_returns_blocks():
    # STYLE.md: exported functions open with a summary line and scannable Args: / Returns: blocks; a function
    # without parameters needs no Args:, one annotated "-> None" no Returns: (a generator has Yields:)
    import inspect

    functions = _exported_functions()
    assert len(functions) > 100  # the walk found the package's modules
    missing = []
    for name, fn in functions:
        doc = inspect.getdoc(fn) or ""
        sig = inspect.signature(fn)
        gaps = [block for block, needed in (("Args:", bool(sig.parameters)),
                                            ("Returns:", sig.return_annotation not in (None, "None")))
                if needed and block not in doc and not (block == "Returns:" and "Yields:" in doc)]
        if not doc.strip() or gaps:
            missing.append(f"{name}: {', '.join(gaps) or 'no docstring'}")
    assert not missing, "exported functions without the docstring blocks:\n" + "\n".join(missing)
