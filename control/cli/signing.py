"""How each API request proves who sends it: a bearer token (the embedded platform) or a SigV4
signature for `execute-api` (API Gateway's IAM auth in AWS), from botocore's credential chain."""

from __future__ import annotations

import requests

from control.cli.config import API_TOKEN_ENV
from control.cli.errors import ClientError, ExitCode


class SigV4Auth(requests.auth.AuthBase):
    """Signs each request for API Gateway's IAM auth with botocore's credential chain."""

    def __init__(self, region: str) -> None:
        import botocore.session

        session = botocore.session.Session()
        self._credentials = session.get_credentials()
        self._region = region or session.get_config_variable("region") or ""
        if self._credentials is None:
            raise ClientError(
                "no AWS credentials found to sign requests to the API (IAM auth)",
                ExitCode.UNAUTHORIZED,
                hint=f"configure AWS credentials (aws configure, AWS_PROFILE, ...) or set {API_TOKEN_ENV}",
                error="NoCredentials",
            )
        if not self._region:
            raise ClientError(
                "no AWS region to sign requests with",
                ExitCode.INVALID,
                hint="set AWS_REGION (or MLCP_REGION)",
                error="NotConfigured",
            )

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        from botocore.auth import SigV4Auth as BotocoreSigV4
        from botocore.awsrequest import AWSRequest

        signed = AWSRequest(
            method=request.method,
            url=request.url,
            data=request.body or b"",
            headers={k: v for k, v in request.headers.items() if k.lower() == "content-type"},
        )
        BotocoreSigV4(self._credentials.get_frozen_credentials(), "execute-api", self._region).add_auth(signed)
        request.headers.update(dict(signed.headers.items()))
        return request


class BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request
