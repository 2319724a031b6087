"""The checkpoint file system's folders, as retention sees them: list them, remove one.

Layout: `datasets/<model>/<dataset-version>/<revision>/` (staged datasets, control/domain/staging),
`datasets/<model>/<dataset-version>/.staging-*` (a staging's temporary folders), `<run-id>/`
(a run's checkpoints). A folder is removed by renaming it aside first, so a reader never sees a
staged dataset half deleted (its marker goes with the rest in one step).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

from control.domain.retention import EfsEntry, EntryKind
from control.domain.staging import STAGED_ROOT, TEMP_PREFIX
from control.errors import InvalidInput

REMOVING_PREFIX = ".removing-"


class EfsTree:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def entries(self, run_models: Mapping[str, str]) -> list[EfsEntry]:
        """Every staged dataset revision, temporary folder and run checkpoint folder.

        `run_models` maps run ids to their model (from the registry's runs)."""
        if not self.root.is_dir():
            return []
        found: list[EfsEntry] = []
        datasets = self.root / STAGED_ROOT
        for model_dir in _folders(datasets):
            for version_dir in _folders(model_dir):
                for folder in _folders(version_dir, hidden=True):
                    path = folder.relative_to(self.root).as_posix()
                    if folder.name.startswith((TEMP_PREFIX, REMOVING_PREFIX)):
                        kind = EntryKind.LEFTOVER
                    elif folder.name.startswith("."):
                        continue
                    else:
                        kind = EntryKind.DATASET
                    found.append(EfsEntry(path, kind, model_dir.name, version_dir.name, _modified(folder)))
        for folder in _folders(self.root):
            if folder.name != STAGED_ROOT:
                name = folder.name
                found.append(EfsEntry(name, EntryKind.CHECKPOINT, run_models.get(name, ""), name, _modified(folder)))
        return found

    def remove(self, path: str) -> None:
        target = (self.root / path).resolve()
        if self.root.resolve() not in target.parents:
            raise InvalidInput(f"{path!r} is not inside the checkpoint file system", field="path")
        if not target.exists():
            return
        aside = target.with_name(f"{REMOVING_PREFIX}{target.name}-{uuid.uuid4().hex[:8]}")
        if not target.name.startswith((TEMP_PREFIX, REMOVING_PREFIX)):
            target.rename(aside)
            target = aside
        shutil.rmtree(target, ignore_errors=True)


def _folders(parent: Path, *, hidden: bool = False) -> list[Path]:
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.iterdir() if p.is_dir() and (hidden or not p.name.startswith(".")))


def _modified(folder: Path) -> float:
    try:
        return folder.stat().st_mtime
    except OSError:
        return 0.0
