"""Events that cannot be processed go to the dead-letter queue, with the reason, never dropped."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from control.adapters.aws import aws_call
from control.domain.registry import iso

MAX_PAYLOAD_CHARS = 200_000  # SQS allows 256 KiB a message


class DeadLetterQueue:
    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url

    @aws_call("dead-letter an event")
    def send(self, *, source: str, error: str, reason: str, payload: Any, now: datetime) -> None:
        body = json.dumps(payload, default=str)
        truncated = len(body) > MAX_PAYLOAD_CHARS
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=json.dumps(
                {
                    "source": source,
                    "error": error,
                    "reason": reason,
                    "received_at": iso(now),
                    "payload": body[:MAX_PAYLOAD_CHARS],
                    "truncated": truncated,
                }
            ),
        )

    @aws_call("read dead letters")
    def peek(self, max_messages: int = 10) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url, MaxNumberOfMessages=max_messages, VisibilityTimeout=0
        )
        return [json.loads(m["Body"]) for m in response.get("Messages", [])]
