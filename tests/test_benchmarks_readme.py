"""benchmarks/README.md is generated from benchmarks/results/*.json and kept in step with them."""

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _make_readme():
    spec = importlib.util.spec_from_file_location("make_readme", BENCH / "make_readme.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_readme_is_generated_from_the_results():
    mod = _make_readme()
    assert mod.main(["--check"]) == 0, "run: python benchmarks/make_readme.py"


def test_every_result_file_has_a_table_with_machine_versions_and_date():
    mod = _make_readme()
    text = mod.render()
    for path in sorted((BENCH / "results").glob("*.json")):
        section = text.split(f"## `{path.stem}`", 1)
        assert len(section) == 2, path.name
        header = section[1].split("| machine | versions | date |", 1)
        assert len(header) == 2, f"{path.name}: no machine/versions/date columns"
