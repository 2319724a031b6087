"""Staging benchmark: S3 → the checkpoint file system, ours beside `aws s3 cp` of the same object.

Starts moto's S3 server on 127.0.0.1 (a versioned bucket), uploads objects of each size with
multipart, then for each size alternates, `--repeats` times:

- ours: `EfsDatasetStager.stage` (streamed, pinned to the version, sha256 while writing, fsync,
  read back and hashed again, marker, rename) in a fresh process, with that process's peak RSS;
- baseline: `aws s3 cp s3://... FILE` (AWS CLI v1 from a throwaway venv, its default 10 threads,
  8 MiB parts; no verification beyond what the CLI does), with its peak RSS;
- reuse: the same staging again (same object version): the time to find and check the marker.

Both copies are timed as whole processes (interpreter start included); the reuse figure is the
staging call alone.

Prints medians: MB/s, ratio ours / aws (target ≥ 0.8), peak RSS of each.

    python3 -m venv /tmp/awscli-venv && /tmp/awscli-venv/bin/pip install awscli
    .venv/bin/python benchmarks/staging.py [--sizes-mb 10 200 2048] [--repeats 3] \\
        [--aws /tmp/awscli-venv/bin/aws]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from boto3.s3.transfer import TransferConfig  # noqa: E402
from botocore.config import Config  # noqa: E402

from control.local.processes import free_port  # noqa: E402

BUCKET = "data"
REGION = "us-east-1"
CHILD = """
import json, sys, time
from pathlib import Path
import boto3
sys.path.insert(0, {root!r})
from control.adapters.efs_staging import EfsDatasetStager
from control.domain.staging import SourceObject, staged_folder
source = SourceObject(**json.loads(sys.argv[1]))
s3 = boto3.client("s3", region_name={region!r})
folder = staged_folder("bench", "v1", [source])
stager = EfsDatasetStager(s3, Path(sys.argv[2]))
started = time.monotonic()
result = stager.stage(folder, [source], "now")
seconds = time.monotonic() - started
print(json.dumps({{"seconds": seconds, "reused": result.reused, "bytes": result.bytes}}))
"""


def write_object(s3, size: int, scratch: Path) -> dict:
    path = scratch / f"object-{size}"
    block = os.urandom(1024 * 1024)
    with path.open("wb") as handle:
        left = size
        while left > 0:
            handle.write(block[: min(left, len(block))])
            left -= len(block)
    key = f"datasets/bench/v{size}/data.csv"
    parts = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=64 * 1024 * 1024)
    s3.upload_file(str(path), BUCKET, key, Config=parts)
    path.unlink()
    head = s3.head_object(Bucket=BUCKET, Key=key)
    return {
        "bucket": BUCKET,
        "key": key,
        "version_id": head["VersionId"],
        "etag": head["ETag"].strip('"'),
        "size": int(head["ContentLength"]),
    }


def ours(source: dict, root: Path, env: dict) -> dict:
    code = CHILD.format(root=str(ROOT), region=REGION)
    started = time.monotonic()
    # Peak RSS from /usr/bin/time, as for the CLI: a child forked straight from this process would
    # report this process's peak (moto holds the objects), since Linux keeps it across execve.
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", sys.executable, "-c", code, json.dumps(source), str(root)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=1800,
    )
    figures: dict = json.loads(done.stdout.strip().splitlines()[-1])
    figures["peak_rss_mib"] = int(done.stderr.strip().splitlines()[-1]) / 1024
    # Wall time of the whole process, as for `aws s3 cp` (interpreter start and imports included).
    return figures | {"staging_seconds": figures["seconds"], "seconds": time.monotonic() - started}


def aws_cp(aws: str, source: dict, target: Path, env: dict) -> dict:
    uri = f"s3://{source['bucket']}/{source['key']}"
    started = time.monotonic()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", aws, "s3", "cp", "--quiet", uri, str(target)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"aws s3 cp failed: {done.stderr[-2000:]}")
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    target.unlink()
    return {"seconds": seconds, "peak_rss_mib": peak_kib / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[10, 200, 2048])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--aws", default="/tmp/awscli-venv/bin/aws", help="the AWS CLI to compare with")
    parser.add_argument(
        "--baseline-up-to-mb", type=int, default=10**6,
        help="skip `aws s3 cp` above this size: moto serves each ranged GET by slicing the whole object, so "
        "the CLI's 8 MiB ranges of a 2 GB object take minutes each time (a moto artefact, not the CLI's speed)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if not Path(args.aws).exists():
        raise SystemExit(f"no AWS CLI at {args.aws}: python3 -m venv /tmp/awscli-venv && "
                         "/tmp/awscli-venv/bin/pip install awscli")  # fmt: skip

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": REGION,
    }
    os.environ.update({k: env[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
    # moto assembles a completed multipart upload in one request: a 2 GB one takes minutes.
    patient = Config(read_timeout=1200, retries={"max_attempts": 1})
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint, config=patient)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    figures = []
    try:
        with tempfile.TemporaryDirectory(prefix="staging-bench-") as folder:
            scratch = Path(folder)
            for size_mb in args.sizes_mb:
                source = write_object(s3, size_mb * 1024 * 1024, scratch)
                runs: dict[str, list[dict]] = {"ours": [], "aws": [], "reuse": []}
                for repeat in range(args.repeats):
                    efs = scratch / f"efs-{repeat}"
                    if size_mb <= args.baseline_up_to_mb:
                        runs["aws"].append(aws_cp(args.aws, source, scratch / "copy", env))
                    runs["ours"].append(ours(source, efs, env))
                    runs["reuse"].append(ours(source, efs, env))
                    assert runs["reuse"][-1]["reused"], "the second staging must reuse the first"
                    shutil.rmtree(efs)
                figures.append({"size_mb": size_mb, "runs": runs})
                s3.delete_object(Bucket=BUCKET, Key=source["key"], VersionId=source["version_id"])
    finally:
        server.stop()

    cores = len(os.sched_getaffinity(0))
    print(f"Staging S3 → file system on this host ({cores} cores), moto S3 server, {args.repeats} repeats (medians)")
    print(f"{'size':>8} {'ours MB/s':>10} {'aws MB/s':>10} {'ratio':>6} {'ours RSS':>9} {'aws RSS':>8} {'reuse s':>8}")
    for entry in figures:
        size = entry["size_mb"]
        runs = entry["runs"]
        ours_s = statistics.median(r["seconds"] for r in runs["ours"])
        aws_s = statistics.median(r["seconds"] for r in runs["aws"]) if runs["aws"] else float("nan")
        entry["summary"] = {
            "ours_mb_per_s": size / ours_s,
            "aws_mb_per_s": size / aws_s,
            "ratio": aws_s / ours_s,
            "ours_peak_rss_mib": max(r["peak_rss_mib"] for r in runs["ours"]),
            "aws_peak_rss_mib": max((r["peak_rss_mib"] for r in runs["aws"]), default=float("nan")),
            "reuse_seconds": statistics.median(r["staging_seconds"] for r in runs["reuse"]),
        }
        s = entry["summary"]
        print(
            f"{size:>6}MB {s['ours_mb_per_s']:>10.0f} {s['aws_mb_per_s']:>10.0f} {s['ratio']:>6.2f} "
            f"{s['ours_peak_rss_mib']:>7.0f}Mi {s['aws_peak_rss_mib']:>6.0f}Mi {s['reuse_seconds']:>8.4f}"
        )
    print("ratio = ours / aws s3 cp throughput (target ≥ 0.8); ours includes the read-back sha256 check")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
