"""Small text tables: the methods' declared properties as a GitHub markdown table or aligned columns."""

from __future__ import annotations

from sgtheory.validate import choice

FORMATS = ("markdown", "text")


def yes_no(flag: bool) -> str:
    """``"yes"`` or ``"no"``.

    Args:
        flag: the value.

    Returns:
        The word.
    """
    return "yes" if flag else "no"


def render(columns, rows, format: str = "markdown") -> str:
    """One table as a string; in markdown the first column is set as code (method names).

    Args:
        columns: the header, one string per column.
        rows: tuples of strings, one per row, as long as ``columns``.
        format: ``"markdown"`` (a GitHub table) or ``"text"`` (aligned columns).

    Returns:
        The table as one string.
    """
    choice(format, "format", FORMATS)
    columns, rows = tuple(columns), [tuple(r) for r in rows]
    if format == "markdown":
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(f"`{c}`" if j == 0 else c for j, c in enumerate(r)) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(r[j]) for r in rows + [columns]) for j in range(len(columns))]

    def line(r):
        return "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()

    return "\n".join([line(columns), line(tuple("-" * w for w in widths))] + [line(r) for r in rows])


__all__ = ["FORMATS", "render", "yes_no"]
