"""A population on disk: one ordinary checkpoint per member plus an index.

``DIR/population.json`` lists the members (seed, rates, status, folder) and, per group of members with the
same rates, the mean ± sd over seeds of the final metrics. ``DIR/member-0/``, ``DIR/member-1/``, … each hold
a :func:`sgtheory.nets.save_checkpoint` checkpoint, so every tool that reads a checkpoint (``sgtheory probe``,
:func:`sgtheory.nets.activations`) reads a member's folder unchanged, and
:func:`sgtheory.nets.load_checkpoint` takes ``(DIR, member=i)``.
"""

from __future__ import annotations

from pathlib import Path

from sgtheory.errors import InputError
from sgtheory.io import ensure_writable_dir, read_json, write_json

INDEX = "population.json"
FORMAT = "sgtheory-population"
FORMAT_VERSION = 1


def member_folder(i: int) -> str:
    """The folder name of member ``i``.

    Args:
        i: the member's index.

    Returns:
        ``"member-i"``.
    """
    return f"member-{i}"


def member_folder_path(directory, member) -> Path:
    """``DIR/member-i`` after checking ``member`` against the index.

    Args:
        directory: the population folder.
        member: the member's index.

    Returns:
        The member's folder.

    Raises:
        InputError: not a member of this population.
    """
    index = read_population(directory)
    n = len(index["members"])
    if isinstance(member, bool) or not isinstance(member, int) or not 0 <= member < n:
        raise InputError(f"member: {member!r} is not a member of the population in {directory} (0..{n - 1})")
    return Path(directory) / index["members"][member]["folder"]


def save_population(directory, result, config: dict | None = None) -> Path:
    """Write every member's checkpoint under ``DIR/member-i/`` and the index ``DIR/population.json``.

    Args:
      directory: the folder (created if needed).
      result: a :class:`sgtheory.nets.PopulationResult`.
      config: extra JSON-able run settings recorded in every checkpoint and the index.

    Returns:
      The folder.
    """
    from sgtheory.nets.checkpoint import save_checkpoint

    folder = ensure_writable_dir(directory)
    if (folder / "checkpoint.json").exists():
        raise InputError(f"population {folder}: holds a single-run checkpoint; write the population elsewhere")
    members = []
    for i in range(result.size):
        save_checkpoint(folder / member_folder(i), result.member(i), config)
        members.append({**result.members[i], "status": result.status[i], "folder": member_folder(i)})
    write_json(folder / INDEX, {"format": FORMAT, "format_version": FORMAT_VERSION, "size": result.size,
                                "method": result.methods[0].name, "mlp": result.config.to_dict(),
                                "training": result.info, "run": config or {}, "members": members,
                                "groups": result.groups()})
    return folder


def read_population(directory) -> dict:
    """The index of a population folder, checked (format, version, member list).

    Args:
      directory: a folder written by :func:`save_population`.

    Returns:
      The index (``members``: per member its settings, ``status`` and ``folder``; ``groups``: mean ± sd).
    """
    path = Path(directory) / INDEX
    index = read_json(path, what="population index")
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise InputError(f"population index {path}: not an sgtheory population")
    if index.get("format_version") != FORMAT_VERSION:
        raise InputError(f"population index {path}: format version {index.get('format_version')!r}; "
                         f"this sgtheory reads version {FORMAT_VERSION}")
    members = index.get("members")
    if not isinstance(members, list) or not members or not all(
            isinstance(m, dict) and isinstance(m.get("folder"), str) and "/" not in m["folder"]
            and m["folder"] not in ("", ".", "..") for m in members):
        raise InputError(f"population index {path}: field members should be a non-empty list of member folders")
    return index


def load_population(directory) -> list:
    """Every member's checkpoint, in member order (each validated as :func:`sgtheory.nets.load_checkpoint` does).

    Args:
      directory: a folder written by :func:`save_population`.

    Returns:
      A list of :class:`sgtheory.nets.Checkpoint`; a diverged member raises :class:`sgtheory.InputError`.
    """
    from sgtheory.nets.checkpoint import load_checkpoint

    return [load_checkpoint(directory, member=i) for i in range(len(read_population(directory)["members"]))]


__all__ = ["INDEX", "load_population", "member_folder", "member_folder_path", "read_population", "save_population"]
