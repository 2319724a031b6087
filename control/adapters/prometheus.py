"""Prometheus's HTTP query API: one instant value per PromQL query."""

from __future__ import annotations

import math

import requests

from control.errors import InvalidInput, TransientError


class PrometheusQueries:
    def __init__(self, base_url: str, *, timeout: float = 5.0, session: requests.Session | None = None) -> None:
        self._url = base_url.rstrip("/") + "/api/v1/query"
        self._timeout = timeout
        self._session = session or requests.Session()

    def value(self, query: str) -> float | None:
        """The query's single value now; None when it has no data (or is NaN).

        Raises TransientError when Prometheus cannot be reached, InvalidInput for a bad query."""
        try:
            response = self._session.get(self._url, params={"query": query}, timeout=self._timeout)
        except requests.RequestException as error:
            raise TransientError(f"Prometheus unreachable: {error}", retry_after=5.0) from error
        if response.status_code == 400:
            raise InvalidInput(f"Prometheus rejected the query {query!r}: {response.text[:200]}", field="query")
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"Prometheus answered {response.status_code}", retry_after=5.0)
        data = response.json().get("data", {})
        result = data.get("result", [])
        if data.get("resultType") == "scalar":
            number = float(result[1])
        elif not result:
            return None
        else:
            number = float(result[0]["value"][1])
        return None if math.isnan(number) else number
