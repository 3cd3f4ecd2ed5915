"""The bundled stress scenarios, shipped as package data and found by name.

``baseline`` names ``scenarios/baseline.yaml`` wherever the project is installed (an editable
checkout or a wheel); :func:`resolve` lets every command take a file path or a bundled name. This
package holds data only and imports nothing of the project, so every layer may use it.
"""
from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

import yaml

SUFFIX = ".yaml"


def folder() -> Path:
    """The folder holding the bundled scenario files (and ``live/``, the recorded demo day)."""
    return Path(str(files(__name__)))


def names() -> list[str]:
    """The bundled scenarios' names, sorted (``baseline``, ``bed_crunch``, ...)."""
    return sorted(p.stem for p in folder().glob(f"*{SUFFIX}"))


def path(name: str) -> Path:
    """The file of the bundled scenario ``name`` (with or without ``.yaml``); KeyError if none."""
    stem = name.removesuffix(SUFFIX)
    found = folder() / f"{stem}{SUFFIX}"
    if stem != Path(stem).name or not found.is_file():
        raise KeyError(f"no bundled scenario {name!r} (bundled: {', '.join(names())})")
    return found


def resolve(arg: str | Path) -> Path:
    """``arg`` as a path when such a file exists (or it names a folder), else the bundled
    scenario of that name; an unknown bare name is returned as given, for the loader's error."""
    given = Path(arg)
    if given.exists() or given.name != str(arg):
        return given
    try:
        return path(str(arg))
    except KeyError:
        return given


def live_folder() -> Path:
    """The recorded demo day: plans (``*.plan.csv``) and their feeds (``*.feed.jsonl``)."""
    return folder() / "live"


def copy_out(name: str, dest: str | Path) -> Path:
    """Copy the bundled scenario ``name`` to ``dest`` (a file, or a folder to put it in), with the
    bundled files it ``extends`` beside it so the copy loads on its own; returns the new file.
    FileExistsError when that would overwrite a different file."""
    source = path(name)
    target = Path(dest)
    if target.is_dir():
        target = target / source.name
    pairs = [(source, target)] + [(p, target.parent / p.name) for p in parent_chain(source)]
    for src, dst in pairs:
        if dst.exists() and dst.read_bytes() != src.read_bytes():
            raise FileExistsError(f"{dst}: exists and differs from the bundled {src.name}")
    for src, dst in pairs:
        shutil.copyfile(src, dst)
    return target


def parent_chain(scenario: Path) -> list[Path]:
    """The bundled files a scenario file ``extends``, nearest first."""
    chain: list[Path] = []
    current = scenario
    while True:
        data = yaml.safe_load(current.read_text(encoding="utf-8"))
        parent = data.get("extends") if isinstance(data, dict) else None
        if not isinstance(parent, str):
            return chain
        current = current.parent / parent
        if current in chain or not current.is_file():
            return chain
        chain.append(current)
