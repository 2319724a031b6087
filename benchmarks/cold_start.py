"""Lambda cold start benchmark: import time of the app module from the deployment package, and the
package's size (issue 2, "Benchmarks").

The zip built by scripts/package_functions.sh is unzipped into a scratch folder and `import app` is
timed as Lambda's python3.11 runtime does it: the package folder first on sys.path, nothing else but
the standard library (`python -I -S`: no site-packages, so a dependency missing from the zip fails
here too), the folder read-only in effect (`-B`: no .pyc written). Each measurement is a fresh
process with `-X importtime`; every variant runs --runs times (after one unrecorded warm-up run), the
variants interleaved, and the table shows medians:

  package           the zip as built (with its precompiled .pyc)            target: <= 500 ms
  deferred requests the same, with control/composition.py importing the Prometheus adapter (and so
                    `requests`) inside Platform.prometheus instead of at the top; patched in the
                    scratch copy only, to show what that change would save
  sources only      the same package without any .pyc (what `chalice package` ships): every cold
                    start compiles every module
  boto3 alone       `import boto3` from the package: the floor any boto3 Lambda pays

Then the top 10 modules by cumulative import time (package), the self time by top-level package,
and the package's size, zipped and unzipped, by distribution.

    .venv/bin/python benchmarks/cold_start.py [--runs 5] [--build] [--zip PATH] [--json out.json]

--build (or a missing zip) runs scripts/package_functions.sh first (about a minute). The rest takes
about 30 s on 2 cores. The runtime's own start (its bootstrap, before the handler module is imported)
is not in these figures; the bootstrap imports json/logging/etc. first, so a real cold start imports
a little less than measured here.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import py_compile
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ZIP = REPO / "build" / "lambda" / "mlcp-functions.zip"
TARGET_MS = 500.0
LAMBDA_ZIP_LIMIT = 50 * 2**20  # direct upload
LAMBDA_UNZIPPED_LIMIT = 250 * 2**20
IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")

# The deferral measured: the Prometheus adapter (requests) is needed only by rollout analysis.
DEFER_FILE = "control/composition.py"
DEFER_TOP = "from control.adapters.prometheus import PrometheusQueries\n"
DEFER_USE = "        return PrometheusQueries(self.settings.prometheus_url)\n"
DEFER_LAZY = "        from control.adapters.prometheus import PrometheusQueries\n\n" + DEFER_USE


@dataclass
class Variant:
    name: str
    task_root: Path
    module: str = "app"
    flags: tuple[str, ...] = ("-B",)  # /var/task is read-only: nothing is cached between cold starts
    wall_ms: list[float] = field(default_factory=list)  # -X importtime, the module's cumulative time
    cpu_ms: list[float] = field(default_factory=list)  # process CPU time around the import
    modules: dict[str, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))  # (self, cum) us
    requests_imported: bool = False

    def median(self, name: str) -> float:
        values = getattr(self, name)
        return statistics.median(values) if values else float("nan")


def lambda_env(task_root: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "mlcp-on_dataset_uploaded",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
    }


def measure(variant: Variant, python: str, record: bool) -> None:
    code = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(variant.task_root)!r})\n"
        "t, c = time.perf_counter(), time.process_time()\n"
        f"import {variant.module}\n"
        "print(time.perf_counter() - t, time.process_time() - c, 'requests' in sys.modules)\n"
        "files = [getattr(m, '__file__', None) or '' for m in list(sys.modules.values())]\n"
        "assert not [f for f in files if 'site-packages' in f], 'imported from outside the package'\n"
    )
    completed = subprocess.run(
        [python, "-I", "-S", "-X", "importtime", *variant.flags, "-c", code],
        cwd=variant.task_root.parent,
        env=lambda_env(variant.task_root),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{variant.name}: import {variant.module} failed:\n{completed.stderr[-3000:]}")
    if not record:
        return
    _wall, cpu, requests_imported = completed.stdout.split()
    variant.cpu_ms.append(float(cpu) * 1000)
    variant.requests_imported = requests_imported == "True"
    total = None
    for line in completed.stderr.splitlines():
        match = IMPORT_LINE.match(line)
        if not match:
            continue
        self_us, cumulative_us, indent, name = int(match[1]), int(match[2]), match[3], match[4]
        variant.modules[name].append((self_us, cumulative_us))
        if name == variant.module and len(indent) == 1:
            total = cumulative_us
    if total is None:
        raise RuntimeError(f"{variant.name}: no importtime line for {variant.module}")
    variant.wall_ms.append(total / 1000)


def prepare(zip_path: Path, scratch: Path) -> tuple[list[Variant], str]:
    package = scratch / "package" / "task"  # app.py puts the folder above it on sys.path: keep it empty
    package.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(package)
    variants = [Variant("package", package)]

    deferred = scratch / "deferred" / "task"
    shutil.copytree(package, deferred)
    source = deferred / DEFER_FILE
    text = source.read_text()
    note = ""
    if DEFER_TOP in text and DEFER_USE in text:
        source.write_text(text.replace(DEFER_TOP, "").replace(DEFER_USE, DEFER_LAZY))
        py_compile.compile(
            str(source),
            cfile=importlib.util.cache_from_source(str(source)),
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        variants.append(Variant("deferred requests", deferred))
    else:
        note = f"deferred variant skipped: {DEFER_FILE} no longer imports the Prometheus adapter at the top"

    sources = scratch / "sources" / "task"
    shutil.copytree(package, sources, ignore=shutil.ignore_patterns("__pycache__"))
    variants.append(Variant("sources only", sources))
    variants.append(Variant("boto3 alone", package, module="boto3"))
    return variants, note


@dataclass
class Sizes:
    zipped: int
    unzipped: int
    files: int
    pyc_unzipped: int
    by_distribution: dict[str, list[int]]  # name -> [zipped, unzipped, files]
    botocore_data: tuple[int, int]


def package_sizes(zip_path: Path) -> Sizes:
    with zipfile.ZipFile(zip_path) as archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        owner: dict[str, str] = {}  # top-level name in the zip -> distribution
        for info in infos:
            if info.filename.endswith(".dist-info/RECORD"):
                dist_info = info.filename.split("/")[0]
                dist = dist_info[: -len(".dist-info")].rsplit("-", 1)[0]
                owner[dist_info] = dist
                for row in archive.read(info).decode().splitlines():
                    top = row.split(",")[0].split("/")[0]
                    if top and not top.endswith(".dist-info") and top != "..":
                        owner.setdefault(top.removesuffix(".py"), dist)
    own = {"app.py": "app (functions/)", "chalicelib": "app (functions/)", "control": "control", "chalice": "chalice"}
    by_distribution: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for info in infos:
        top = info.filename.split("/")[0]
        name = own.get(top) or owner.get(top.removesuffix(".py")) or top
        entry = by_distribution[name]
        entry[0] += info.compress_size
        entry[1] += info.file_size
        entry[2] += 1
    data = [i for i in infos if i.filename.startswith("botocore/data/")]
    return Sizes(
        zipped=zip_path.stat().st_size,
        unzipped=sum(i.file_size for i in infos),
        files=len(infos),
        pyc_unzipped=sum(i.file_size for i in infos if i.filename.endswith(".pyc")),
        by_distribution=dict(by_distribution),
        botocore_data=(sum(i.compress_size for i in data), sum(i.file_size for i in data)),
    )


def mib(n: float) -> str:
    return f"{n / 2**20:.1f}"


def table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths, strict=True))))
    for row in rows:
        print("  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True))))


def report(variants: list[Variant], sizes: Sizes, runs: int, note: str, load: tuple[str, str]) -> bool:
    base = variants[0]
    print()
    print(
        f"Cold start: `import app` from the unzipped package, python{sys.version_info[0]}.{sys.version_info[1]} "
        f"-I -S -X importtime, {runs} fresh processes per variant (medians), {os.cpu_count()} CPUs"
    )
    print(f"load average before: {load[0]}; after: {load[1]}")
    rows = []
    for v in variants:
        rows.append(
            [
                f"{v.name} (import {v.module})",
                f"{v.median('wall_ms'):.0f}",
                f"{min(v.wall_ms):.0f}-{max(v.wall_ms):.0f}",
                f"{v.median('wall_ms') / base.median('wall_ms'):.2f}x",
                f"{v.median('cpu_ms'):.0f}",
                f"{v.median('cpu_ms') / base.median('cpu_ms'):.2f}x",
                "yes" if v.requests_imported else "no",
            ]
        )
    table(["variant", "import ms", "range", "vs package", "CPU ms", "vs package", "requests loaded"], rows)
    print(
        "import ms: -X importtime's cumulative time of the module (wall clock); CPU ms: the process's CPU time "
        "over the import, the figure least disturbed by other load on a shared machine."
    )
    met = base.median("wall_ms") <= TARGET_MS
    print(f"target import app <= {TARGET_MS:.0f} ms: {base.median('wall_ms'):.0f} ms, {'met' if met else 'MISSED'}")
    if note:
        print(note)

    print()
    print("Top 10 modules by cumulative import time (package, medians):")
    medians = {
        name: (statistics.median(s for s, _ in values), statistics.median(c for _, c in values))
        for name, values in base.modules.items()
        if name != base.module
    }
    top = sorted(medians.items(), key=lambda item: item[1][1], reverse=True)[:10]
    table(["module", "cumulative ms", "self ms"], [[n, f"{c / 1000:.1f}", f"{s / 1000:.1f}"] for n, (s, c) in top])

    print()
    print("Self time by top-level package (package, medians; sums to the total):")
    by_top: dict[str, float] = defaultdict(float)
    for name, (self_us, _) in medians.items():
        by_top[name.split(".")[0]] += self_us
    by_top[base.module] += statistics.median(s for s, _ in base.modules[base.module])
    total = sum(by_top.values())
    rows = [
        [name, f"{us / 1000:.1f}", f"{us / total * 100:.0f}%"]
        for name, us in sorted(by_top.items(), key=lambda item: item[1], reverse=True)[:10]
    ]
    table(["package", "self ms", "share"], rows)

    print()
    print(
        f"Package: {mib(sizes.zipped)} MiB zipped, {mib(sizes.unzipped)} MiB unzipped, {sizes.files} files "
        f"(Lambda limits: {mib(LAMBDA_ZIP_LIMIT)} MiB zipped for direct upload, {mib(LAMBDA_UNZIPPED_LIMIT)} MiB "
        f"unzipped); .pyc: {mib(sizes.pyc_unzipped)} MiB unzipped; botocore/data (service models): "
        f"{mib(sizes.botocore_data[0])} MiB zipped, {mib(sizes.botocore_data[1])} MiB unzipped"
    )
    rows = [
        [name, mib(z), mib(u), str(n), f"{z / sizes.zipped * 100:.0f}%"]
        for name, (z, u, n) in sorted(sizes.by_distribution.items(), key=lambda item: item[1][0], reverse=True)[:12]
    ]
    table(["distribution", "zipped MiB", "unzipped MiB", "files", "of zip"], rows)
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per variant (default 5)")
    parser.add_argument("--zip", type=Path, default=DEFAULT_ZIP, help="the deployment package")
    parser.add_argument("--build", action="store_true", help="run scripts/package_functions.sh first")
    parser.add_argument("--python", default=sys.executable, help="a CPython 3.11 (the package's .pyc are 3.11)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.build or not args.zip.exists():
        if args.zip != DEFAULT_ZIP:
            parser.error(f"{args.zip} does not exist (--build writes {DEFAULT_ZIP})")
        subprocess.run(["bash", str(REPO / "scripts" / "package_functions.sh")], check=True)

    load_before = _load_average()
    scratch = Path(tempfile.mkdtemp(prefix="mlcp-cold-start-"))
    try:
        variants, note = prepare(args.zip, scratch)
        for round_ in range(args.runs + 1):  # round 0: warm-up (page cache), not recorded
            shift = round_ % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                measure(variant, args.python, record=round_ > 0)
            if round_:
                print(
                    f"round {round_}: " + ", ".join(f"{v.name} {v.wall_ms[-1]:.0f} ms" for v in variants),
                    file=sys.stderr,
                )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    sizes = package_sizes(args.zip)
    met = report(variants, sizes, args.runs, note, (load_before, _load_average()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        figures = {
            "variants": {v.name: {"import_ms": v.wall_ms, "cpu_ms": v.cpu_ms} for v in variants},
            "zipped_bytes": sizes.zipped,
            "unzipped_bytes": sizes.unzipped,
            "by_distribution": sizes.by_distribution,
            "target_met": met,
        }
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


def _load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
