"""Secrets Manager: the alert webhook's bearer token, read once per warm Lambda."""

from __future__ import annotations

from typing import Any

from control.adapters.aws import aws_call


class SecretValue:
    def __init__(self, secrets_client: Any, secret_arn: str) -> None:
        self._client = secrets_client
        self._arn = secret_arn
        self._value: str | None = None

    @aws_call("read secret")
    def get(self) -> str:
        if self._value is None:
            self._value = str(self._client.get_secret_value(SecretId=self._arn)["SecretString"])
        return self._value
