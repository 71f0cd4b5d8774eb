"""The README's examples are real: every command line parses, every option it names exists, every Python
block compiles, and the cheap Python blocks run.

Nothing here trains: ``sgtheory`` lines go through :func:`sgtheory.cli.main.parse_command` (the real
parsers, and the settings table where a command has one); ``analyses/`` lines are checked against the
script's own options. Running every example end to end, in order, on a fresh clone is done by hand
(it takes minutes).
"""

import re
import shlex
from pathlib import Path

import jax
import pytest

from sgtheory.cli.main import build_parser, parse_command

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
BLOCKS = [(lang, body) for lang, body in FENCE.findall(README)]
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
ANALYSIS_OPTIONS = {"--quick", "--out", "--replot"}  # every analyses/ script's own (sgtheory.repro.analysis_main)


def _commands(block: str) -> list[list[str]]:
    """The shell commands of a bash block: lines joined at trailing backslashes, comments dropped, split at
    ``&&``; each as its tokens."""
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        tokens = shlex.split(line, comments=True)
        while tokens:
            cut = tokens.index("&&") if "&&" in tokens else len(tokens)
            out.append(tokens[:cut])
            tokens = tokens[cut + 1:]
    return out


def _bash_commands() -> list[list[str]]:
    return [c for lang, body in BLOCKS if lang == "bash" for c in _commands(body)]


def _sgtheory_args(tokens: list[str]) -> list[str] | None:
    if tokens[:1] == ["sgtheory"]:
        return tokens[1:]
    if tokens[:3] == ["python3", "-m", "sgtheory"]:
        return tokens[3:]
    return None


def _subparsers() -> dict:
    action = next(a for a in build_parser()._actions if a.dest == "command")
    return dict(action.choices)


def test_the_readme_has_examples_of_every_subcommand():
    used = {args[0] for c in _bash_commands() if (args := _sgtheory_args(c))}
    assert used == set(_subparsers()), f"README examples cover {sorted(used)}"


@pytest.mark.parametrize("tokens", [c for c in _bash_commands() if _sgtheory_args(c) is not None],
                         ids=lambda c: " ".join(c)[:70])
def test_every_sgtheory_line_parses(tokens):
    args = parse_command(_sgtheory_args(tokens))
    assert args is not None and args.command == _sgtheory_args(tokens)[0]


def test_every_analysis_line_names_a_script_and_its_options():
    lines = [c for c in _bash_commands() if len(c) > 1 and c[0].startswith("python") and c[1].startswith("analyses/")]
    assert lines, "the README shows how to run an analysis script"
    for tokens in lines:
        script = ROOT / tokens[1]
        assert script.is_file(), tokens[1]
        # the script's options: analysis_main's own and one per row of its settings table (read from the
        # source, so that no JAX program is imported here)
        source = script.read_text(encoding="utf-8")
        known = ANALYSIS_OPTIONS | {"--" + n.replace("_", "-") for n in re.findall(r'Setting\(\s*"(\w+)"', source)}
        named = {t.split("=", 1)[0] for t in tokens[2:] if t.startswith("--")}
        assert named <= known, f"{tokens[1]}: {sorted(named - known)} not among its options"


def test_every_other_command_is_one_the_readme_means():
    """A new kind of line (another tool, another script) needs a check here before it goes in."""
    for tokens in _bash_commands():
        line = " ".join(tokens)
        assert (_sgtheory_args(tokens) is not None or line.startswith("python3 -m pip install -e ")
                or line == "python3 -m pytest -q" or tokens[:2] == ["python3", "-c"]
                or tokens[1].startswith("analyses/")), line


def test_quick_start_is_two_commands_and_the_test_command_is_ci():
    heading = re.search(r"^## .*quick start.*$", README, re.I | re.M)
    assert heading, "the README has a quick-start section"
    section = README[heading.end():].split("\n## ", 1)[0]
    (lang, body), = FENCE.findall(section)
    lines = [ln.split("  #", 1)[0].strip() for ln in body.splitlines() if ln.strip()]  # without the comments
    assert lang == "bash" and len(lines) == 2
    assert lines[0] == "python3 -m pip install -e . && sgtheory repro --quick"
    ci = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines()
          if ln.strip() and not ln.startswith(("#", "set ", "cd "))]
    assert ci == [lines[1]], "the README's test command must be .ci/run's, character for character"


def test_pip_extras_named_in_the_readme_exist():
    section = (ROOT / "pyproject.toml").read_text().split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    extras = set(re.findall(r"^([\w-]+)\s*=", section, re.M))
    named = set(re.findall(r"'\.\[([\w,-]+)\]'", README))
    assert named and {e for n in named for e in n.split(",")} <= extras, (named, extras)


def _prose_by_command() -> list[tuple[str | None, str]]:
    """The README's text outside code blocks, paragraph by paragraph, with the subcommand a paragraph
    describes (one opening with **`sgtheory NAME`**), else None."""
    prose = FENCE.sub("", README)
    out = []
    for para in re.split(r"\n\s*\n", prose):
        m = re.match(r"\*\*`sgtheory (\w+)`\*\*", para.strip())
        out.append((m.group(1) if m else None, para))
    return out


def test_options_named_in_the_prose_exist():
    subs = _subparsers()
    options = {name: {o for a in p._actions for o in a.option_strings} for name, p in subs.items()}
    options["repro"] |= ANALYSIS_OPTIONS  # its paragraph also tells how to call a script directly
    everywhere = set().union(*options.values())
    checked = 0
    for command, para in _prose_by_command():
        named = set(OPTION.findall(para))
        checked += len(named)
        known = options[command] if command else everywhere
        assert named <= known, f"{command or 'README'}: {sorted(named - known)} is not an option"
    assert checked >= 10  # the check reads the prose at all


def test_the_readme_has_no_dates_or_session_history():
    assert not re.search(r"20\d\d-\d\d-\d\d|\btoday\b|earlier session", README, re.I)
    assert len(README.splitlines()) <= 150  # issue 16's limit for a newcomer's page


@pytest.mark.parametrize("index", [i for i, (lang, _) in enumerate(BLOCKS) if lang == "python"])
def test_every_python_block_compiles(index):
    compile(BLOCKS[index][1], f"README.md python block {index}", "exec")


def _check_linear(ns):
    # the example's own grid (16×16, one seed): a prediction for every cell, scored against the runs
    assert ns["result"].status.shape == (1, 1, 16, 16) and ns["prediction"].verdict.shape == (1, 1, 16, 16)
    assert ns["residual"] < 1e-10  # the least-squares fixed point in float64: round-off
    scored = ns["linear"].score(ns["prediction"], ns["result"].status)
    assert scored["coverage"] > 0.5 and scored["agreement"] >= 0.9


def _check_represent(ns):
    rp, X, Y = ns["rp"], ns["X"], ns["Y"]
    for value in (rp.linear_cka(X, Y), rp.svcca(X, Y), rp.pwcca(X, Y)):
        assert 0.0 <= value <= 1.0
    assert ns["np"].allclose(ns["np"].diag(rp.similarity_matrix([X, Y], [X, Y], "linear_cka")), 1.0)


# Python blocks executed here, by their first line: each runs in seconds and writes no file.
CHEAP_PYTHON = {"import jax, jax.numpy as jnp, numpy as np": _check_linear, "import numpy as np": _check_represent}


@pytest.mark.parametrize("first_line", sorted(CHEAP_PYTHON))
def test_cheap_python_blocks_run(first_line, capsys):
    blocks = [body for lang, body in BLOCKS if lang == "python" and body.startswith(first_line + "\n")]
    assert len(blocks) == 1, f"no single python block starts with {first_line!r}"
    # The linear block switches JAX to float64, which tests/conftest.py has already done: a no-op here.
    assert jax.config.jax_enable_x64
    namespace = {"__name__": "readme_example"}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    printed = capsys.readouterr().out
    assert printed.strip() and "nan" not in printed.lower()
    CHEAP_PYTHON[first_line](namespace)
