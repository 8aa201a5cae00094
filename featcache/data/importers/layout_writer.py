"""The writer every importer shares: planned files -> symlinks in folder layout.

Links are absolute (to the resolved source file): an imported ROOT is a light view over a
read-only copy of the public dataset that usually lives elsewhere (``/data/UCF101``), and
absolute links keep working when that view is moved or copied on its own; relative links
would only survive moving both together.

Writing happens in two passes so a bad rerun loses nothing: first every target is checked
(a different file already at a target path, or a ROOT imported with other options, is an
error before anything is touched), then links are created. Rerunning the same import is a
no-op. ``ROOT/import-<source>.json`` is written last and records what was imported.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from featcache.data.dataset import CLASSES_FILE, read_classes_file
from featcache.errors import DatasetError
from featcache.data.importers.class_mapping import ClassMapping
from featcache.utils.atomic import atomic_path
from featcache.utils.progress import make_progress

MANIFEST_FORMAT = "featcache-import"


@dataclass
class ImportSummary:
    """What an import did: files per shared class and split, and what it skipped."""

    source: str
    root: Path
    kind: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # shared class -> split -> files
    skipped_classes: dict[str, int] = field(default_factory=dict)  # unmapped source class -> files
    unused: int = 0  # files the source's split files mark as in no split (HMDB id 0)
    linked: int = 0  # links created by this run
    present: int = 0  # targets already in place (rerun)

    @property
    def total(self) -> int:
        return sum(sum(splits.values()) for splits in self.counts.values())

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "kind": self.kind,
            "counts": self.counts,
            "skipped_classes": self.skipped_classes,
            "unused": self.unused,
            "total": self.total,
        }


class LayoutWriter:
    """Collects ``(file, kind, split, source class)`` entries, then links them under ``root``."""

    def __init__(self, root: str | os.PathLike, mapping: ClassMapping, *, source: str, kind: str, options: dict):
        self.root = Path(root).expanduser()
        self.mapping = mapping
        self.source = source
        self.kind = kind
        self.options = dict(options, mapping=mapping.name, mapping_digest=mapping_digest(mapping))
        self._links: dict[Path, Path] = {}  # target -> resolved source
        self._counts: dict[str, Counter] = defaultdict(Counter)
        self._skipped: Counter = Counter()
        self._unused = 0
        self._shared_seen: list[str] = []

    # -- planning -------------------------------------------------------------
    def add(self, path: Path, *, split: str, source_class: str, name: str | None = None) -> bool:
        """Plan one file; returns False (and counts it) when its class is not in the mapping."""
        shared = self.mapping.target(self.source, source_class)
        if shared is None:
            self._skipped[source_class] += 1
            return False
        target = self.root / self.kind / split / shared / (name or path.name)
        resolved = Path(path).resolve()
        previous = self._links.get(target)
        if previous is not None and previous != resolved:
            raise DatasetError(f"{target}: two source files map to this path: {previous} and {resolved}")
        self._links[target] = resolved
        self._counts[shared][split] += 1
        if shared not in self._shared_seen:
            self._shared_seen.append(shared)
        return True

    def skip_unused(self, count: int = 1) -> None:
        self._unused += count

    def skip_class(self, source_class: str, count: int) -> None:
        """Count files of a source class that is not mapped, without planning them."""
        self._skipped[source_class] += count

    def is_mapped(self, source_class: str) -> bool:
        return self.mapping.target(self.source, source_class) is not None

    # -- writing --------------------------------------------------------------
    def write(self, *, progress: bool = True) -> ImportSummary:
        if not self._links:
            raise DatasetError(
                f"nothing to import from {self.source}: none of its classes is in mapping {self.mapping.name!r}"
                + (f" (skipped: {', '.join(sorted(self._skipped)[:8])}...)" if self._skipped else "")
            )
        manifest_path = self.root / f"import-{self.source}.json"
        self._check_previous_import(manifest_path)
        classes = self._class_list()
        todo, present = self._check_targets()

        self.root.mkdir(parents=True, exist_ok=True)
        self._write_classes(classes)
        self._create_links(todo, progress=progress)

        summary = ImportSummary(
            source=self.source,
            root=self.root,
            kind=self.kind,
            counts={c: dict(sorted(self._counts[c].items(), key=lambda kv: _split_order(kv[0]))) for c in classes if c in self._counts},
            skipped_classes=dict(sorted(self._skipped.items())),
            unused=self._unused,
            linked=len(todo),
            present=present,
        )
        _write_json(manifest_path, {"format": MANIFEST_FORMAT, "options": self.options, **summary.to_json(), "complete": True})
        return summary

    def _check_previous_import(self, manifest_path: Path) -> None:
        """Refuse to mix two different imports of one source (e.g. UCF split 1 and 2) in one ROOT."""
        if not manifest_path.exists():
            return
        try:
            previous = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{manifest_path}: unreadable import record ({exc}); remove it to reimport") from None
        old = previous.get("options", {})
        if old != self.options:
            changed = sorted(k for k in set(old) | set(self.options) if old.get(k) != self.options.get(k))
            raise DatasetError(
                f"{self.root} already holds a {self.source} import with other options ({', '.join(changed)}); "
                f"import into a fresh ROOT (mixing them would put files in two splits)"
            )

    def _class_list(self) -> list[str]:
        """The class order for ROOT/classes.txt: the mapping's, agreeing with what is there."""
        classes_file = self.root / CLASSES_FILE
        existing = read_classes_file(classes_file) if classes_file.exists() else None
        if self.mapping.is_identity:
            base = existing or []
            return base + sorted(c for c in self._shared_seen if c not in base)
        if existing is not None and existing != self.mapping.classes:
            raise DatasetError(
                f"{classes_file}: lists other classes than mapping {self.mapping.name!r}; "
                f"import every source with the same mapping, or into a fresh ROOT"
            )
        return self.mapping.classes

    def _check_targets(self) -> tuple[list[tuple[Path, Path]], int]:
        """Targets still to link, and how many are already in place; raises on any conflict."""
        todo, present, conflicts = [], 0, []
        for target, source in sorted(self._links.items()):
            if not os.path.lexists(target):
                todo.append((target, source))
            elif _same_file(target, source):
                present += 1
            else:
                conflicts.append(target)
        if conflicts:
            more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
            first = conflicts[0]
            what = f"a link to {os.readlink(first)}" if first.is_symlink() else "a different file"
            raise DatasetError(
                f"{first}: conflict: {what} is already there, not {self._links[first]}{more}; nothing was changed"
            )
        return todo, present

    def _write_classes(self, classes: list[str]) -> None:
        path = self.root / CLASSES_FILE
        text = "".join(f"{c}\n" for c in classes)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            return
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")

    def _create_links(self, todo: list[tuple[Path, Path]], *, progress: bool) -> None:
        if not todo:
            return
        with make_progress() as bar:
            task = bar.add_task(f"linking {self.source}", total=len(todo), visible=progress)
            for target, source in todo:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(source, target)  # one syscall: a link is never half-written
                bar.advance(task)


def mapping_digest(mapping: ClassMapping) -> str:
    """A short fingerprint of a mapping's content, so reimports with an edited YAML are caught."""
    data = {"classes": mapping.classes, "sources": {s: mapping.source_classes(s) for s in ("ucf101", "hmdb51", "stanford40")}}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _same_file(target: Path, source: Path) -> bool:
    try:
        if os.path.samefile(target, source):
            return True
        return target.is_file() and not target.is_symlink() and filecmp.cmp(target, source, shallow=False)
    except OSError:  # a broken link
        return False


def _split_order(split: str) -> int:
    return {"train": 0, "val": 1, "test": 2}.get(split, 3)


def _write_json(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
