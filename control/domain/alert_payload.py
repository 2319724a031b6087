"""Alertmanager notifications (webhook payload version 4): the wire format, parsed and checked.

Two ways in, one payload shape:

- the webhook receiver (`webhook_configs`): the HTTP body is the v4 JSON → `parse_webhook`;
- Amazon SNS (`sns_configs`): Alertmanager puts the rendered `message` template in the SNS
  Message. Its default template is plain text, which carries no fingerprints, so the platform's
  Alertmanager config sets `message: '{{ template "sns.json" . }}'`, a template (in the
  Alertmanager template files) that renders the same v4 JSON object as the webhook body. The
  SNS Message is therefore the v4 JSON → `parse_sns_message` (or `parse_sns_event` for a raw
  Lambda SNS event). Alertmanager 0.25 has no `toJson`, so such templates write JSON by hand:
  `version` and `groupKey` may be missing there, and times may come in Go's default
  `2006-01-02 15:04:05.999 -0700 MST` form; both are accepted on this path only. A message that
  is not JSON (the default text template) is an InvalidInput saying so.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from control.errors import InvalidInput, PayloadTooLarge

MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_ALERTS_PER_PAYLOAD = 200
MAX_LABELS = 64
MAX_LABEL_VALUE_LENGTH = 4096
WEBHOOK_VERSION = "4"


class AlertStatus(enum.StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Alert:
    status: AlertStatus
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None  # None while firing (Alertmanager sends 0001-01-01T00:00:00Z)
    generator_url: str
    fingerprint: str

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def deployment(self) -> str | None:
        return self.labels.get("deployment") or None

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    @property
    def idempotency_key(self) -> str:
        """The same firing, however many times and by however many Alertmanagers it is delivered.

        The fingerprint alone is a hash of the labels: it repeats when the same alert fires again
        after resolving, which is a new incident. The start time tells the two apart."""
        return f"{self.fingerprint}@{self.starts_at.astimezone(UTC).isoformat()}"


@dataclass(frozen=True)
class AlertPayload:
    version: str
    group_key: str
    truncated_alerts: int
    status: AlertStatus
    receiver: str
    group_labels: Mapping[str, str]
    common_labels: Mapping[str, str]
    common_annotations: Mapping[str, str]
    external_url: str
    alerts: tuple[Alert, ...]


# -------------------------------------------------------------------------------------- parsing


def parse_webhook(body: bytes | str | Mapping[str, Any]) -> AlertPayload:
    """The body Alertmanager's webhook receiver POSTs (v4). Raises InvalidInput naming the field."""
    return _parse_payload(_load_json(body, "body"), strict=True)


def parse_sns_message(message: str | bytes) -> AlertPayload:
    """An SNS Message rendered by the `sns.json` template: the v4 JSON object."""
    raw = _load_json(
        message,
        "Message",
        not_json_hint=(
            "; Alertmanager's default SNS message is text: set sns_configs.message to "
            "'{{ template \"sns.json\" . }}' so it renders the webhook v4 JSON"
        ),
    )
    return _parse_payload(raw, strict=False)


def parse_sns_event(event: Mapping[str, Any]) -> list[AlertPayload]:
    """A Lambda SNS event (`Records[].Sns.Message`), or one SNS HTTP notification (`Message`)."""
    if not isinstance(event, Mapping):
        raise InvalidInput("SNS event must be an object", field="event")
    if "Records" not in event:
        if event.get("Type") == "Notification" and "Message" in event:
            return [_parse_sns_with_field(event["Message"], "Message")]
        raise InvalidInput("SNS event has neither Records nor a Notification Message", field="Records")
    records = event["Records"]
    if not isinstance(records, list) or not records:
        raise InvalidInput("Records must be a non-empty list", field="Records")
    payloads = []
    for index, record in enumerate(records):
        where = f"Records[{index}]"
        sns = record.get("Sns") if isinstance(record, Mapping) else None
        if not isinstance(sns, Mapping) or "Message" not in sns:
            raise InvalidInput(f"{where} is not an SNS record with Sns.Message", field=f"{where}.Sns.Message")
        payloads.append(_parse_sns_with_field(sns["Message"], f"{where}.Sns.Message"))
    return payloads


def _parse_sns_with_field(message: Any, where: str) -> AlertPayload:
    if not isinstance(message, str):
        raise InvalidInput(f"{where} must be a string", field=where)
    try:
        return parse_sns_message(message)
    except InvalidInput as error:
        inner = error.field if error.field and error.field != "Message" else None
        scoped = f"{where}.{inner}" if inner else where
        raise type(error)(error.message, field=scoped) from None


def _load_json(body: Any, where: str, not_json_hint: str = "") -> Any:
    if isinstance(body, Mapping):
        return body
    if isinstance(body, (bytes, bytearray)):
        if len(body) > MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(f"{where} is {len(body)} bytes; at most {MAX_PAYLOAD_BYTES}", field=where)
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"{where} is not UTF-8", field=where) from None
    if not isinstance(body, str):
        raise InvalidInput(f"{where} must be a JSON object", field=where)
    if len(body.encode("utf-8")) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(f"{where} is larger than {MAX_PAYLOAD_BYTES} bytes", field=where)
    try:
        return json.loads(body)
    except json.JSONDecodeError as error:
        raise InvalidInput(f"{where} is not JSON ({error.msg} at {error.pos}){not_json_hint}", field=where) from None


def _parse_payload(raw: Any, *, strict: bool) -> AlertPayload:
    if not isinstance(raw, Mapping):
        raise InvalidInput("alert payload must be a JSON object", field="body")
    version = raw.get("version", None if strict else WEBHOOK_VERSION)
    if version is None:
        raise InvalidInput("version is required (Alertmanager webhook payload version 4)", field="version")
    if version != WEBHOOK_VERSION:
        raise InvalidInput(f'unsupported payload version {version!r}; expected "4"', field="version")
    alerts_raw = raw.get("alerts")
    if not isinstance(alerts_raw, list):
        raise InvalidInput("alerts must be a list", field="alerts")
    if len(alerts_raw) > MAX_ALERTS_PER_PAYLOAD:
        raise PayloadTooLarge(
            f"{len(alerts_raw)} alerts in one payload; at most {MAX_ALERTS_PER_PAYLOAD} "
            "(set max_alerts on the receiver)",
            field="alerts",
        )
    truncated = raw.get("truncatedAlerts", 0)
    if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
        raise InvalidInput("truncatedAlerts must be a non-negative integer", field="truncatedAlerts")
    group_key = raw.get("groupKey", None if strict else "")
    return AlertPayload(
        version=WEBHOOK_VERSION,
        group_key=_string(group_key, "groupKey"),
        truncated_alerts=truncated,
        status=_status(raw.get("status"), "status"),
        receiver=_string(raw.get("receiver"), "receiver", required=True),
        group_labels=_labels(raw.get("groupLabels", {}), "groupLabels"),
        common_labels=_labels(raw.get("commonLabels", {}), "commonLabels"),
        common_annotations=_labels(raw.get("commonAnnotations", {}), "commonAnnotations"),
        external_url=_string(raw.get("externalURL", ""), "externalURL"),
        alerts=tuple(_parse_alert(item, f"alerts[{i}]", strict=strict) for i, item in enumerate(alerts_raw)),
    )


def _parse_alert(raw: Any, where: str, *, strict: bool) -> Alert:
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where} must be an object", field=where)
    ends_at_raw = raw.get("endsAt")
    return Alert(
        status=_status(raw.get("status"), f"{where}.status"),
        labels=_labels(raw.get("labels"), f"{where}.labels", required=True),
        annotations=_labels(raw.get("annotations", {}), f"{where}.annotations"),
        starts_at=_time(raw.get("startsAt"), f"{where}.startsAt", strict=strict),
        ends_at=_ends_at(ends_at_raw, f"{where}.endsAt", strict=strict),
        generator_url=_string(raw.get("generatorURL", ""), f"{where}.generatorURL"),
        fingerprint=_string(raw.get("fingerprint"), f"{where}.fingerprint", required=True),
    )


def _ends_at(value: Any, where: str, *, strict: bool) -> datetime | None:
    if value in (None, ""):
        return None
    parsed = _time(value, where, strict=strict)
    return None if parsed.year <= 1 else parsed  # Go's zero time: a firing alert with no end yet


def _string(value: Any, where: str, *, required: bool = False) -> str:
    if value is None or (required and value == ""):
        raise InvalidInput(f"{where} is required", field=where)
    if not isinstance(value, str):
        raise InvalidInput(f"{where} must be a string; got {type(value).__name__}", field=where)
    return value


def _status(value: Any, where: str) -> AlertStatus:
    if value is None:
        raise InvalidInput(f"{where} is required", field=where)
    try:
        return AlertStatus(value)
    except ValueError:
        raise InvalidInput(f'{where} must be "firing" or "resolved"; got {value!r}', field=where) from None


def _labels(value: Any, where: str, *, required: bool = False) -> dict[str, str]:
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{where} must be an object of strings", field=where)
    if len(value) > MAX_LABELS:
        raise InvalidInput(f"{where} has {len(value)} entries; at most {MAX_LABELS}", field=where)
    for key, item in value.items():
        if not isinstance(item, str):
            raise InvalidInput(f"{where}.{key} must be a string; got {type(item).__name__}", field=f"{where}.{key}")
        if len(item) > MAX_LABEL_VALUE_LENGTH:
            raise InvalidInput(f"{where}.{key} is longer than {MAX_LABEL_VALUE_LENGTH}", field=f"{where}.{key}")
    return dict(value)


_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$")
# Go's time.Time.String(): "2024-05-01 10:00:00.123456789 +0000 UTC", maybe with " m=+1.23".
_GO_DEFAULT = re.compile(
    r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d+))? ([+-])(\d{2})(\d{2})(?: [A-Za-z0-9+-]+)?(?: m=[+-][\d.]+)?$"
)


def _time(value: Any, where: str, *, strict: bool) -> datetime:
    if not isinstance(value, str):
        raise InvalidInput(f"{where} is required: an RFC 3339 time", field=where)
    match = _RFC3339.match(value)
    if match:
        date, clock, fraction, zone = match.groups()
        offset = "+00:00" if zone in ("Z", "z") else zone
    else:
        go = _GO_DEFAULT.match(value) if not strict else None
        if not go:
            raise InvalidInput(f"{where} must be an RFC 3339 time; got {value[:40]!r}", field=where)
        date, clock, fraction, sign, hours, minutes = go.groups()
        offset = f"{sign}{hours}:{minutes}"
    micro = (fraction or "")[:6].ljust(6, "0")  # Go writes nanoseconds; Python keeps microseconds
    try:
        parsed = datetime.fromisoformat(f"{date}T{clock}.{micro}{offset}")
    except ValueError:
        raise InvalidInput(f"{where} is not a valid time; got {value[:40]!r}", field=where) from None
    return parsed
