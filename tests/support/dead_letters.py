"""Every message in the dead-letter queue, read without consuming it.

A receive returns at most 10 messages, always the same first ones while they stay visible: a
queue the whole session writes to would hide a new letter behind older ones. So each batch is
hidden while the next is read, then every message is made visible again, as it was.
"""

from __future__ import annotations

import json
from typing import Any

HIDE_SECONDS = 30


def dead_letters(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    letters: list[dict[str, Any]] = []
    handles: list[str] = []
    try:
        while True:
            batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=HIDE_SECONDS).get(
                "Messages", []
            )
            if not batch:
                return letters
            letters += [json.loads(message["Body"]) for message in batch]
            handles += [message["ReceiptHandle"] for message in batch]
    finally:
        for start in range(0, len(handles), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for i, handle in enumerate(handles[start : start + 10])
            ]
            sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
