"""Memory of the embedded AWS under failing DynamoDB transactions: moto as shipped vs. the embedded
platform's weak instance tracking (control/local/moto_server.py), side by side in one run.

    .venv/bin/python benchmarks/embedded_aws_memory.py [--items 300] [--failures 400]

A registry-shaped table with `--items` items; then `--failures` transactions that fail their
condition (what the registry's de-duplicated history writes do on every repeated reconcile step).
Each variant runs in its own process and prints, every 100 failures, the live moto `Table` objects,
the live DynamoDB attribute values and the process RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def measure(weak: bool, items: int, failures: int) -> list[dict[str, float]]:
    import boto3
    import psutil
    from moto import mock_aws
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    if weak:
        from control.local.moto_server import _track_instances_weakly

        _track_instances_weakly()

    def live(kind: type) -> int:
        return sum(1 for o in gc.get_objects() if type(o) is kind)

    rows = []
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        db.create_table(
            TableName="registry",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk")],
            BillingMode="PAY_PER_REQUEST",
        )
        for i in range(items):
            details = {"M": {f"field{k}": {"S": "value"} for k in range(20)}}
            db.put_item(TableName="registry", Item={"pk": {"S": "MODEL#m"}, "sk": {"S": f"HISTORY#{i}"}, "d": details})
        repeat = {
            "Put": {
                "TableName": "registry",
                "Item": {"pk": {"S": "MODEL#m"}, "sk": {"S": "HISTORY#0"}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        for done in range(failures + 1):
            if done % 100 == 0:
                gc.collect()
                rss = psutil.Process().memory_info().rss / 2**20
                rows.append({"failures": done, "tables": live(Table), "values": live(DynamoType), "rss_mib": rss})
            if done < failures:
                with contextlib.suppress(db.exceptions.TransactionCanceledException):
                    db.transact_write_items(TransactItems=[repeat])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--failures", type=int, default=400)
    parser.add_argument("--variant", choices=("stock", "weak"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(measure(args.variant == "weak", args.items, args.failures)))
        return 0
    results = {}
    for variant in ("stock", "weak"):
        command = [sys.executable, __file__, "--variant", variant, "--items", str(args.items)]
        out = subprocess.run([*command, "--failures", str(args.failures)], cwd=REPO, check=True, capture_output=True)
        results[variant] = json.loads(out.stdout)
    print(f"{args.items} items of ~20 attributes; transactions failing their condition:\n")
    stock_head, weak_head = "moto as shipped: tables  values  RSS MiB", "weak tracking: tables  values  RSS MiB"
    print(f"{'failures':>8} | {stock_head:>42} | {weak_head:>40}")
    for stock, weak in zip(results["stock"], results["weak"], strict=True):
        print(
            f"{stock['failures']:>8} | {stock['tables']:>21} {stock['values']:>8} {stock['rss_mib']:>8.1f} | "
            f"{weak['tables']:>19} {weak['values']:>8} {weak['rss_mib']:>8.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
