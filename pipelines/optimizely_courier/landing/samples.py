"""Sample files: a local copy of one landed file per tag, kept by `{}` (sample-mode) runs.

They live in `.courier/samples/<courier>/<tag>/<date>__<file name>` (git-ignored); `courier feeds
init` infers a feed from the newest one. At most KEEP_PER_TAG are kept per tag.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from optimizely_courier.landing.discovery import DataFile, Plan
from optimizely_courier.landing.storage import ObjectStore
from optimizely_courier.settings import SAMPLES_DIR

KEEP_PER_TAG = 5


def sample_dir(root: Path, courier: str, tag: str) -> Path:
    return root / SAMPLES_DIR / courier / tag


def keep_samples(root: Path, courier: str, store: ObjectStore, plan: Plan) -> list[Path]:
    """Copy the newest file of each tag in `plan` into the samples directory; return the copies."""
    kept = []
    for tag, files in plan.files.items():
        if not files:
            continue
        newest: DataFile = max(files, key=lambda f: (f.date, f.key))
        target = sample_dir(root, courier, tag) / f"{newest.date}__{newest.key.rsplit('/', 1)[-1]}"
        target.parent.mkdir(parents=True, exist_ok=True)
        local = store.fetch(newest.key)
        try:
            shutil.copyfile(local, target)
        finally:
            store.release(local)
        kept.append(target)
        for old in samples(root, courier, tag)[KEEP_PER_TAG:]:
            old.unlink()
    return kept


def samples(root: Path, courier: str, tag: str | None = None) -> list[Path]:
    """Kept samples, newest first (by the date in their name, then when they were kept)."""
    base = root / SAMPLES_DIR / courier
    paths = [p for p in base.glob(f"{tag or '*'}/*.parquet") if p.is_file()]
    return sorted(paths, key=lambda p: (p.name[:10], p.stat().st_mtime_ns), reverse=True)
