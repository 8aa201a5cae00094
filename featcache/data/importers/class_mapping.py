"""A class mapping: each source dataset's class names -> one shared class set.

The YAML format (see ``featcache/mappings/ssvac40.yaml``)::

    name: ssvac40
    classes:                         # shared classes, in label order
      clap:
        hmdb51: [clap]
        stanford40: [applauding]
      basketball:
        ucf101: [Basketball]

Each source class maps to at most one shared class; source classes that are not listed
are skipped by the importers. ``ClassMapping.identity()`` keeps every source class under its
own name, for importing a whole dataset as is.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import yaml

from featcache.errors import DatasetError

SOURCES = ("ucf101", "hmdb51", "stanford40")
DEFAULT_MAPPING = "ssvac40"
IDENTITY = "none"


def shipped_mappings() -> list[str]:
    """Names of the mappings shipped in ``featcache/mappings`` (``ssvac40``, ...)."""
    folder = resources.files("featcache").joinpath("mappings")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


class ClassMapping:
    """Shared classes (in order) and, per source, ``source class -> shared class``."""

    def __init__(self, name: str, classes: list[str], by_source: dict[str, dict[str, str]] | None):
        self.name = name
        self.classes = list(classes)
        # None means identity: every source class keeps its own name.
        self._by_source = by_source

    # -- construction ---------------------------------------------------------
    @classmethod
    def identity(cls) -> "ClassMapping":
        return cls(IDENTITY, [], None)

    @classmethod
    def load(cls, spec: str | os.PathLike | None = None) -> "ClassMapping":
        """A YAML path, the name of a shipped mapping, ``"none"`` (identity), or None (ssvac40)."""
        spec = DEFAULT_MAPPING if spec is None else spec
        if str(spec) == IDENTITY:
            return cls.identity()
        path = Path(spec)
        if not path.suffix and not path.exists():
            if str(spec) not in shipped_mappings():
                raise DatasetError(
                    f"unknown class mapping {str(spec)!r}: not a file and not one of the shipped mappings "
                    f"({', '.join(shipped_mappings())}) or {IDENTITY!r}"
                )
            text = resources.files("featcache").joinpath(f"mappings/{spec}.yaml").read_text(encoding="utf-8")
            return cls.from_yaml(text, origin=f"featcache/mappings/{spec}.yaml")
        if not path.is_file():
            raise DatasetError(f"{path}: class mapping file not found")
        return cls.from_yaml(path.read_text(encoding="utf-8"), origin=str(path))

    @classmethod
    def from_yaml(cls, text: str, *, origin: str = "<mapping>") -> "ClassMapping":
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            reason = str(exc).replace("\n", " ")
            raise DatasetError(f"{origin}: not valid YAML: {reason}") from None
        return cls.from_dict(data, origin=origin)

    @classmethod
    def from_dict(cls, data, *, origin: str = "<mapping>") -> "ClassMapping":
        if not isinstance(data, dict) or not isinstance(data.get("classes"), dict) or not data["classes"]:
            raise DatasetError(f"{origin}: expected a mapping with a non-empty 'classes:' table")
        by_source: dict[str, dict[str, str]] = {source: {} for source in SOURCES}
        for shared, sources in data["classes"].items():
            shared = _check_class_name(shared, origin)
            if sources is None:
                sources = {}
            if not isinstance(sources, dict):
                raise DatasetError(f"{origin}: class {shared!r}: expected 'source: [names]' entries")
            for source, names in sources.items():
                if source not in SOURCES:
                    raise DatasetError(
                        f"{origin}: class {shared!r}: unknown source {source!r}; expected one of {', '.join(SOURCES)}"
                    )
                names = [names] if isinstance(names, str) else (names or [])
                for name in names:
                    name = str(name)
                    previous = by_source[source].get(name)
                    if previous is not None and previous != shared:
                        raise DatasetError(
                            f"{origin}: {source} class {name!r} is mapped twice (to {previous!r} and {shared!r})"
                        )
                    by_source[source][name] = shared
        name = str(data.get("name") or Path(origin).stem)
        return cls(name, list(data["classes"]), by_source)

    # -- queries --------------------------------------------------------------
    @property
    def is_identity(self) -> bool:
        return self._by_source is None

    def target(self, source: str, source_class: str) -> str | None:
        """The shared class of ``source_class`` in ``source``, or None when it is not mapped."""
        if self._by_source is None:
            return _check_class_name(source_class, source)
        if source not in self._by_source:
            raise DatasetError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
        return self._by_source[source].get(source_class)

    def source_classes(self, source: str) -> dict[str, str]:
        """``{source class: shared class}`` for one source (empty for the identity mapping)."""
        return dict(self._by_source.get(source, {})) if self._by_source is not None else {}

    def __repr__(self) -> str:
        return f"ClassMapping({self.name!r}, classes={len(self.classes)})"


def _check_class_name(name, origin: str) -> str:
    """Shared class names become folder names: no separators, no leading dot."""
    name = str(name).strip()
    if not name or "/" in name or "\\" in name or name.startswith(".") or "\n" in name:
        raise DatasetError(f"{origin}: {name!r} cannot be a class folder name")
    return name
