"""The EKS bearer token (as aws-iam-authenticator makes it) and its refresh."""

from __future__ import annotations

import base64
import urllib.parse
from pathlib import Path

import boto3

from control.adapters.kubernetes_eks import api_client_for, eks_token

CA_PEM = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()


def test_token_is_a_presigned_get_caller_identity_bound_to_the_cluster() -> None:
    session = boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name="eu-west-1"
    )
    token = eks_token(session, "mlcp-prod", "eu-west-1")
    assert token.startswith("k8s-aws-v1.") and "=" not in token
    encoded = token.removeprefix("k8s-aws-v1.")
    url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    parsed = urllib.parse.urlparse(url)
    query = urllib.parse.parse_qs(parsed.query)
    assert parsed.netloc == "sts.eu-west-1.amazonaws.com"
    assert query["Action"] == ["GetCallerIdentity"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0].split(";")
    assert query["X-Amz-Expires"] == ["60"]


def test_the_client_sends_a_bearer_token_and_refreshes_it_when_old() -> None:
    now = [0.0]
    tokens = iter(["k8s-aws-v1.first", "k8s-aws-v1.second"])
    client = api_client_for("https://example.eks", CA_PEM, lambda: next(tokens), clock=lambda: now[0])
    config = client.configuration
    assert config.get_api_key_with_prefix("authorization") == "Bearer k8s-aws-v1.first"
    now[0] = 599.0
    assert config.get_api_key_with_prefix("authorization") == "Bearer k8s-aws-v1.first"
    now[0] = 601.0
    assert config.get_api_key_with_prefix("authorization") == "Bearer k8s-aws-v1.second"
    assert config.host == "https://example.eks" and config.verify_ssl


def test_clients_for_one_cluster_share_one_ca_file_and_it_holds_the_ca() -> None:
    first = api_client_for("https://example.eks", CA_PEM, lambda: "k8s-aws-v1.t")
    second = api_client_for("https://example.eks", CA_PEM, lambda: "k8s-aws-v1.t")
    path = Path(first.configuration.ssl_ca_cert)
    assert second.configuration.ssl_ca_cert == str(path)  # one file per CA, not one per client
    assert path.read_bytes() == base64.b64decode(CA_PEM)
    other = api_client_for("https://other.eks", base64.b64encode(b"another CA").decode(), lambda: "k8s-aws-v1.t")
    assert other.configuration.ssl_ca_cert != str(path)
