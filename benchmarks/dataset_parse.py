"""Training-data parse: peak memory and time of a rank turning its CSV bytes into the float64 table.

A rank holds its shard's bytes (workloads/training/shards.py reads only its byte range); what
parsing adds on top decides how large a dataset a worker's memory request can take (datasets go up
to 2 GiB, control/domain/datasets.py). Side by side, in one run, each in a fresh process on the same
generated file:

- whole text (the baseline, the job's parser before it parsed in chunks): decode all the bytes,
  then `np.loadtxt(io.StringIO(text))`, the way most CSV loaders are first written;
- chunked (`workloads.training.data.parse_csv`): PARSE_CHUNK_BYTES of lines at a time.

Figures: peak RSS above the bytes (ru_maxrss after parsing less ru_maxrss after reading), as a
multiple of the file's size, and seconds.

    .venv/bin/python benchmarks/dataset_parse.py [--mib 300 --columns 8 --repeats 2]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WAYS = ("whole text", "chunked")


def generate(path: Path, mib: int, columns: int) -> None:
    """A numeric CSV of about `mib` MiB: `columns` features with 6 decimals and a label."""
    generator = random.Random(0)
    with path.open("w") as out:
        out.write(",".join(f"f{i}" for i in range(columns)) + ",label\n")
        while out.tell() < mib * 2**20:
            rows = (
                ",".join(f"{generator.random():.6f}" for _ in range(columns)) + f",{generator.randrange(3)}"
                for _ in range(10_000)
            )
            out.write("\n".join(rows) + "\n")


def measure(path: Path, way: str) -> dict[str, float]:
    """In this process: read the file, parse it one way, report memory above the bytes."""
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from workloads.training.data import parse_csv

    raw = path.read_bytes()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if way == "whole text":
        text = raw.decode("utf-8-sig")
        _, _, body = text.partition("\n")
        table = np.loadtxt(io.StringIO(body), delimiter=",", dtype=np.float64, ndmin=2, comments=None)
    else:
        _, table = parse_csv(raw, name=path.name)
    seconds = time.perf_counter() - started
    above = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return {"above_mib": above, "seconds": seconds, "rows": table.shape[0], "table_mib": table.nbytes / 2**20}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=300, help="size of the generated CSV")
    parser.add_argument("--columns", type=int, default=8, help="feature columns")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--measure", nargs=2, metavar=("FILE", "WAY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), args.measure[1])))
        return 0
    with tempfile.TemporaryDirectory(prefix="mlcp-parse-") as folder:
        path = Path(folder) / "data.csv"
        generate(path, args.mib, args.columns)
        size = path.stat().st_size / 2**20
        runs: dict[str, list[dict[str, float]]] = {way: [] for way in WAYS}
        for _ in range(args.repeats):
            for way in WAYS:  # each in a fresh process: ru_maxrss is a process's high-water mark
                out = subprocess.run(
                    [sys.executable, __file__, "--measure", str(path), way],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                runs[way].append(json.loads(out.stdout))
    table = runs["chunked"][0]["table_mib"]
    print(f"parse of a {size:.0f} MiB CSV ({args.columns} features + label, {runs['chunked'][0]['rows']:.0f} rows; "
          f"float64 table {table:.0f} MiB), medians of {args.repeats}")  # fmt: skip
    print(f"{'way':14}{'above the bytes':>18}{'× file size':>13}{'seconds':>10}")
    for way in WAYS:
        above = statistics.median(r["above_mib"] for r in runs[way])
        seconds = statistics.median(r["seconds"] for r in runs[way])
        print(f"{way:14}{above:14.0f} MiB{above / size:13.2f}{seconds:10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
