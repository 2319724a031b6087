"""Disaster-recovery drill on the embedded platform: 50 models × 5 versions, 2 deployments.

    .venv/bin/python benchmarks/dr_drill.py [--models 50] [--versions 5]      (about 5 minutes)

A source platform (`python -m control up`) is filled with approved versions (real TorchScript
artifacts, lineage, history) and two deployments rolled out blue-green. Then:

- registry export and import: items/s and peak Python heap (tracemalloc), beside a naive baseline
  in the same run (export: scan everything into a list, then json.dump it; import: one PutItem
  per item);
- a backup is taken, the source keeps changing for a few seconds (one more model registered),
  then the drill restores that backup into a second platform: time to restore, to verify, to
  redeploy, to the first successful prediction (the measured RTO), and the data window lost
  (the measured RPO, and the changes it lost) — beside the targets of terraform/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from control.adapters.registry_backup import export_table, import_table, scan  # noqa: E402
from control.cli.api_client import ApiClient  # noqa: E402
from control.cli.config import load_client_config  # noqa: E402
from control.domain.recovery import RPO_TARGET, RTO_TARGET  # noqa: E402
from control.dr import Drill, Environment, fresh_platform  # noqa: E402
from control.local.registry_seed import seed  # noqa: E402
from control.local.resources import registry_table_definition  # noqa: E402
from tests.support.inference_artifact import CLASSES, FEATURES, model_bytes  # noqa: E402

SAMPLE = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]]


def measured(function: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, seconds, peak MiB of Python heap)."""
    tracemalloc.start()
    started = time.perf_counter()
    result = function()
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, seconds, peak


def naive_export(db: Any, table: str, path: Path) -> int:
    items = list(scan(db, table))
    path.write_text(json.dumps(items))
    return len(items)


def naive_import(db: Any, table: str, path: Path) -> int:
    items = json.loads(path.read_text())
    for item in items:
        db.put_item(TableName=table, Item=item)
    return len(items)


def fresh_table(source: Environment, name: str) -> str:
    source.aws("dynamodb").create_table(**registry_table_definition(name))
    return name


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--versions", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dr-bench-"))
    with fresh_platform(work / "source") as source:
        names = [f"model-{i:02d}" for i in range(args.models)]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:  # models in parallel: one model's versions stay in order
            list(
                pool.map(
                    lambda model: seed(
                        source.endpoints,
                        models=[model],
                        versions=args.versions,
                        model_pt=model_bytes(seed=5),
                        feature_names=FEATURES,
                        classes=CLASSES,
                        sample_rows=SAMPLE,
                    ),
                    names,
                )
            )
        seed_s = time.perf_counter() - started
        print(f"seeded {args.models} models × {args.versions} versions in {seed_s:.1f} s")
        api = ApiClient(load_client_config(source.endpoints_file))
        for model in names[:2]:
            api.start_rollout(f"{model}-api", {"model": model, "version": args.versions})
        for model in names[:2]:
            while api.get_deployment(f"{model}-api")["status"]["phase"] != "COMPLETED":
                time.sleep(1)
        print("2 deployments rolled out on the source")

        db = source.aws("dynamodb")
        manifest, ours_export_s, ours_export_mib = measured(lambda: export_table(db, source.table, work / "backup"))
        count, base_export_s, base_export_mib = measured(lambda: naive_export(db, source.table, work / "naive.json"))
        restore_a = fresh_table(source, "bench-restore-a")
        written, ours_import_s, ours_import_mib = measured(lambda: import_table(db, restore_a, work / "backup"))
        restore_b = fresh_table(source, "bench-restore-b")
        _, base_import_s, base_import_mib = measured(lambda: naive_import(db, restore_b, work / "naive.json"))
        assert written == count == manifest.items

        time.sleep(5)  # the source goes on changing after the backup: the window the drill loses
        seed(
            source.endpoints,
            models=["after-the-backup"],
            versions=1,
            model_pt=model_bytes(seed=5),
            feature_names=FEATURES,
            classes=CLASSES,
            sample_rows=SAMPLE,
        )
        report = Drill(work / "drill", say=lambda line: print(f"  {line}")).run(source, work / "backup", None)

    print()
    print(f"registry: {manifest.items} items ({manifest.kinds})")
    print(f"{'what':<34}{'ours':>22}{'baseline':>22}")
    print(
        f"{'export items/s (peak heap MiB)':<34}{manifest.items / ours_export_s:>14.0f} ({ours_export_mib:5.1f})"
        f"{count / base_export_s:>14.0f} ({base_export_mib:5.1f})   baseline: scan to a list, one json.dump"
    )
    print(
        f"{'import items/s (peak heap MiB)':<34}{written / ours_import_s:>14.0f} ({ours_import_mib:5.1f})"
        f"{count / base_import_s:>14.0f} ({base_import_mib:5.1f})   baseline: one PutItem per item"
    )
    print()
    print(f"{'drill phase (s after the disaster)':<44}{'measured':>10}")
    for phase, seconds in report.phases.items():
        print(f"{phase:<44}{seconds:>10.1f}")
    for deployment in report.redeployed:
        print(f"  {deployment}")
    print(
        f"RTO measured {report.rto_seconds:.1f} s   target {RTO_TARGET.total_seconds():.0f} s (4 h)   "
        f"met: {report.to_dict()['rto_met']}"
    )
    print(
        f"RPO measured {report.rpo_seconds:.1f} s ({report.lost_changes} changes lost)   "
        f"target {RPO_TARGET.total_seconds():.0f} s (15 min)   met: {report.to_dict()['rpo_met']}"
    )
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
