"""An ApiClient for EKS from Lambda: the cluster's endpoint and CA, and the standard EKS token.

The token is what aws-iam-authenticator and `aws eks get-token` produce: an STS
GetCallerIdentity URL presigned with the header `x-k8s-aws-id: <cluster>`, encoded as
'k8s-aws-v1.' + base64url without padding. EKS accepts it for 15 minutes, so the client
refreshes it before each request once it is older than TOKEN_REFRESH_SECONDS.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient, Configuration

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
PRESIGN_EXPIRES_SECONDS = 60
TOKEN_REFRESH_SECONDS = 600


def eks_token(session: Any, cluster_name: str, region: str) -> str:
    """`session` is a boto3 Session; only this module's functions touch boto3."""
    from botocore.signers import RequestSigner

    sts = session.client("sts", region_name=region)
    signer = RequestSigner(
        sts.meta.service_model.service_id, region, "sts", "v4", session.get_credentials(), session.events
    )
    url = signer.generate_presigned_url(
        {
            "method": "GET",
            "url": f"https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
            "body": {},
            "headers": {CLUSTER_ID_HEADER: cluster_name},
            "context": {},
        },
        region_name=region,
        expires_in=PRESIGN_EXPIRES_SECONDS,
        operation_name="",
    )
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def ca_file_for(ca: bytes) -> Path:
    """The cluster CA as a file (urllib3 reads a path, on every new connection): one file per CA,
    named by its digest, so clients for the same cluster (every Lambda invocation's) share it."""
    path = Path(tempfile.gettempdir()) / f"eks-ca-{hashlib.sha256(ca).hexdigest()[:32]}.crt"
    if not path.exists() or path.read_bytes() != ca:
        partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}")
        partial.write_bytes(ca)
        partial.replace(path)  # atomic: a concurrent reader sees the whole file or none
    return path


def api_client_for(
    endpoint: str,
    ca_data_b64: str,
    token_provider: Callable[[], str],
    *,
    refresh_seconds: float = TOKEN_REFRESH_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> ApiClient:
    """An ApiClient that trusts the cluster CA and sends a bearer token refreshed in time."""
    configuration = Configuration(host=endpoint)
    configuration.ssl_ca_cert = str(ca_file_for(base64.b64decode(ca_data_b64)))
    configuration.verify_ssl = True
    configuration.api_key_prefix = {"authorization": "Bearer"}
    # urllib3 would retry reads on its own 3 times: KubernetesCluster's RetryPolicy decides instead.
    configuration.retries = False
    lock = threading.Lock()
    issued = {"at": float("-inf")}

    def refresh(config: Configuration) -> None:
        with lock:
            if clock() - issued["at"] >= refresh_seconds:
                config.api_key = {"authorization": token_provider()}
                issued["at"] = clock()

    configuration.refresh_api_key_hook = refresh
    refresh(configuration)
    return ApiClient(configuration)


def eks_api_client(cluster_name: str, region: str, *, session: Any = None) -> ApiClient:
    """Describe the cluster (endpoint, CA) and build its client; needs eks:DescribeCluster."""
    if session is None:
        import boto3

        session = boto3.session.Session(region_name=region)
    cluster = session.client("eks", region_name=region).describe_cluster(name=cluster_name)["cluster"]
    return api_client_for(
        cluster["endpoint"],
        cluster["certificateAuthority"]["data"],
        lambda: eks_token(session, cluster_name, region),
    )
