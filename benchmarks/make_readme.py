"""Write ``benchmarks/README.md``: one table per result file of ``benchmarks/results/``.

Every measured figure of the project lives in those JSON files; this script is the only writer of the
tables people read. Each row carries the machine, the package versions and the date it was measured on.

    python benchmarks/make_readme.py            # rewrite benchmarks/README.md
    python benchmarks/make_readme.py --check    # exit 1 if the README is out of date (used by the tests)

A result file may name the columns of its table with a top-level ``"table_columns"`` list (keys of its
rows); otherwise every scalar field of the rows is shown. Rows are taken from ``"rows"`` or ``"results"``
(a list of objects); a file without either is shown as one row of its scalar fields. Top-level numbers
outside the rows (targets, ratios) are listed under the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE / "README.md"
MAX_COLUMNS = 12
SKIP = {"benchmark", "command", "machine", "date", "rows", "results", "table_columns", "why_separate", "settings",
        "problem", "notes"}

INTRO = """# Benchmarks

Speed and memory targets of sgtheory, measured by the scripts in this folder. Each script writes
`benchmarks/results/NAME.json` (a `--quick` run writes `NAME_quick.json` and never overwrites the full
result); this page is generated from those files by `python benchmarks/make_readme.py` — edit the
results, not this page. Timings depend on the machine and its load: compare rows measured on the same
machine and date only.

| script | what it measures |
| --- | --- |
| `sweep_throughput.py` | the linear SG sweep against a numpy loop doing the same update (CPU; GPU kernel if present) |
| `train_throughput.py` | per-step cost of the credit-assignment methods on a 6×256 ReLU MLP |
| `similarity_speed.py` | `similarity_matrix` against per-pair calls of the similarity measures |
| `theory_robustness.py` | held-out agreement of the convergence prediction over random sweep configurations |
| `population_throughput.py` | member-steps/s of populations of nets trained as one program vs one after another |
| `rnn_throughput.py` | sequences/s of truncated BPTT, DNI and DNI + Aux at the same truncation |
"""


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if v is None:
        return ""
    return str(v).replace("|", "\\|")


def _scalar(v) -> bool:
    return isinstance(v, (int, float, str, bool)) or v is None


def _machine(m: dict) -> str:
    if not isinstance(m, dict):
        return _fmt(m)
    gpu = m.get("device") or m.get("gpus") or m.get("accelerator")
    if isinstance(gpu, list):
        gpu = ", ".join(map(str, gpu))
    cpu = m.get("cpu") or m.get("processor") or ""
    cores = m.get("cpu_count")
    text = f"{cpu} ×{cores}" if cores else str(cpu)
    if gpu and "none" not in str(gpu).lower():
        text = f"{gpu}; {text}" if text.strip() else str(gpu)
    return text.strip() or "unknown"


def _versions(m: dict) -> str:
    if not isinstance(m, dict):
        return ""
    v = dict(m.get("versions") or {})
    for k in ("python", "numpy", "jax"):
        if k in m and _scalar(m[k]):
            v.setdefault(k, m[k])
    return ", ".join(f"{k} {v[k]}" for k in ("python", "numpy", "jax") if k in v)


def _date(data: dict) -> str:
    return str(data.get("date") or "undated")[:10]


def _rows(data: dict) -> list[dict]:
    for key in ("rows", "results"):
        rows = data.get(key)
        if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
            return rows
    flat = {k: v for k, v in data.items() if k not in SKIP and _scalar(v)}
    for k, v in data.items():  # one level of nesting, e.g. {"gpu": {"fused": {...}}}
        if k not in SKIP and isinstance(v, dict):
            flat.update({f"{k}.{kk}": vv for kk, vv in v.items() if _scalar(vv)})
    return [flat] if flat else []


def _headlines(data: dict, rows_key_used: bool) -> list[str]:
    lines = []
    for k, v in data.items():
        if k in SKIP or not rows_key_used:
            continue
        if _scalar(v):
            lines.append(f"- `{k}`: {_fmt(v)}")
        elif isinstance(v, dict) and all(_scalar(x) for x in v.values()):
            lines.append(f"- `{k}`: " + ", ".join(f"{kk} {_fmt(vv)}" for kk, vv in v.items()))
    return lines


def table(path: Path) -> str:
    """The markdown section of one result file."""
    data = json.loads(path.read_text())
    rows = _rows(data)
    cols = data.get("table_columns")
    if not cols:
        cols = []
        for r in rows:
            cols += [k for k, v in r.items() if _scalar(v) and k not in cols and not k.endswith("_rounds")]
        cols = cols[:MAX_COLUMNS]
    machine, versions, date = _machine(data.get("machine", {})), _versions(data.get("machine", {})), _date(data)
    head = cols + ["machine", "versions", "date"]
    out = [f"## `{path.stem}`", ""]
    if data.get("command"):
        out += [f"Command: `{data['command']}`", ""]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        out.append("| " + " | ".join([_fmt(r.get(c)) for c in cols] + [machine, versions, date]) + " |")
    extra = _headlines(data, any(isinstance(data.get(k), list) for k in ("rows", "results")))
    if extra:
        out += [""] + extra
    return "\n".join(out) + "\n"


def render() -> str:
    """The whole README text."""
    parts = [INTRO]
    for path in sorted(RESULTS.glob("*.json")):
        parts.append(table(path))
    return "\n".join(parts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 when README.md differs from the results")
    args = p.parse_args(argv)
    text = render()
    if args.check:
        current = README.read_text() if README.exists() else ""
        if current != text:
            print("benchmarks/README.md is out of date: run python benchmarks/make_readme.py", file=sys.stderr)
            return 1
        return 0
    tmp = README.with_name(".README.md.tmp")
    tmp.write_text(text)
    tmp.replace(README)
    print(f"wrote {README} ({len(list(RESULTS.glob('*.json')))} result files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
