"""The AWS platform's Terraform, proven offline.

What runs, against the real `terraform` binary and the real AWS provider schema: from the
offline filesystem mirror where there is one (terraform/terraformrc.offline.hcl, or
TF_PLUGIN_MIRROR), else from the Terraform registry through a plugin cache (TF_PLUGIN_CACHE_DIR):

- `terraform fmt -check -recursive terraform/`
- per root (envs/example, bootstrap): `init -backend=false`, `validate`, `test` (mocked provider)
- `plan` of envs/example with fake credentials (an override file turns off every AWS call the
  provider makes while configuring), its plan JSON checked: resource counts per module, only
  creates, encryption / IMDSv2 / public access settings on every planned resource
- checkov (`.venv-checkov`, locked in requirements/checkov.txt) with --skip-download: zero failed
  checks, every skip carries its reason
- terraform/addons (helm provider not downloadable here): fmt and HCL parse only
- the mlcp-platform chart: lint and render with helm-python-sdk (`.venv-helm`, locked in requirements/helm.txt)

Slow commands start together in the background when the session first needs them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import hcl2
import pytest
import yaml

from control.local.resources import ALL_FUNCTIONS

REPO = Path(__file__).resolve().parents[2]
TF = REPO / "terraform"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ROOTS = {"example": TF / "envs" / "example", "bootstrap": TF / "bootstrap"}
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
HELM_PYTHON = REPO / ".venv-helm" / "bin" / "python"
STATE_MACHINES = ("training_pipeline.asl.json", "rollout.asl.json")

TERRAFORM = shutil.which("terraform")
pytestmark = pytest.mark.skipif(TERRAFORM is None, reason="the terraform binary is not on PATH")


class Run:
    def __init__(self, args: list[str], proc: subprocess.CompletedProcess[str]) -> None:
        self.args, self.rc, self.stdout = args, proc.returncode, proc.stdout
        self.out = proc.stdout + proc.stderr

    def check(self) -> str:
        assert self.rc == 0, f"{' '.join(self.args)} failed ({self.rc}):\n{self.out[-6000:]}"
        return self.out


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> Run:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return Run(args, proc)


class Session:
    """Working folders and the background commands shared by the tests."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.env = {**os.environ, "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"}
        cli_config = self._cli_config()
        if cli_config is not None:
            self.env["TF_CLI_CONFIG_FILE"] = str(cli_config)
        self.env.pop("TF_DATA_DIR", None)
        self.statemachines, self.placeholder_files = self._statemachines()
        self.pool = ThreadPoolExecutor(max_workers=3)
        self.jobs: dict[str, Future[Run]] = {}

    def _cli_config(self) -> Path | None:
        """The offline CLI config where a provider mirror exists; else None: the registry, with a plugin cache."""
        offline = TF / "terraformrc.offline.hcl"
        default_mirror = re.search(r'path\s*=\s*"([^"]+)"', offline.read_text())
        assert default_mirror, f"no filesystem_mirror path in {offline}"
        mirror = os.environ.get("TF_PLUGIN_MIRROR") or default_mirror[1]
        if not Path(mirror).is_dir():
            default_cache = Path.home() / ".cache" / "mlcp" / "terraform-plugins"
            Path(self.env.setdefault("TF_PLUGIN_CACHE_DIR", str(default_cache))).mkdir(parents=True, exist_ok=True)
            return None
        path = self.tmp / "terraformrc"
        path.write_text(offline.read_text().replace(json.dumps(default_mirror[1]), json.dumps(mirror)))
        return path

    def _statemachines(self) -> tuple[Path, list[str]]:
        """The repository's definitions, each missing one replaced by its test placeholder."""
        folder = self.tmp / "statemachines"
        folder.mkdir()
        placeholders = []
        for name in STATE_MACHINES:
            real = REPO / "statemachines" / name
            if not real.exists():
                placeholders.append(name)
            shutil.copy(real if real.exists() else FIXTURES / "statemachines" / name, folder / name)
        return folder, placeholders

    def tf_env(self, root: str) -> dict[str, str]:
        return {**self.env, "TF_DATA_DIR": str(self.tmp / "data" / root)}

    def start(self, name: str, fn) -> Future[Run]:  # type: ignore[no-untyped-def]
        if name not in self.jobs:
            self.jobs[name] = self.pool.submit(fn)
        return self.jobs[name]

    # --- jobs -------------------------------------------------------------------------------
    def init(self, root: str) -> Run:
        return _run([TERRAFORM, "init", "-backend=false", "-input=false", "-no-color"], ROOTS[root], self.tf_env(root))

    def validate_and_test(self, root: str) -> tuple[Run, Run, Run]:
        init = self.init(root)
        if init.rc != 0:
            return init, init, init
        validate = _run([TERRAFORM, "validate", "-no-tests", "-no-color"], ROOTS[root], self.tf_env(root))
        args = [TERRAFORM, "test", "-no-color"]
        if root == "example":
            args += ["-var", f"statemachines_dir={self.statemachines}"]
        return init, validate, _run(args, ROOTS[root], self.tf_env(root))

    def plan(self) -> tuple[Run, dict | None]:  # type: ignore[type-arg]
        """Plan envs/example offline: a copy of terraform/ plus an override file for the provider."""
        work = self.tmp / "plan"
        shutil.copytree(TF, work / "terraform", ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
        root = work / "terraform" / "envs" / "example"
        (root / "offline_override.tf").write_text(OFFLINE_OVERRIDE.replace("STATE_PATH", str(work / "state.tfstate")))
        (root / "offline.auto.tfvars.json").write_text(
            json.dumps(
                {
                    **EXAMPLE_VARS,
                    "lambda_package_path": str(FIXTURES / "lambda.zip"),
                    "statemachines_dir": str(self.statemachines),
                }
            )
        )
        env = {**self.env, "TF_DATA_DIR": str(work / "data")}
        init = _run([TERRAFORM, "init", "-input=false", "-no-color"], root, env)
        if init.rc != 0:
            return init, None
        plan = _run(
            [
                TERRAFORM,
                "plan",
                "-input=false",
                "-no-color",
                "-refresh=false",
                "-lock=false",
                f"-out={work / 'plan.bin'}",
            ],
            root,
            env,
        )
        if plan.rc != 0:
            return plan, None
        show = _run([TERRAFORM, "show", "-json", str(work / "plan.bin")], root, env)
        return show, (json.loads(show.stdout) if show.rc == 0 else None)

    def checkov(self) -> Run:
        report = self.tmp / "checkov"
        args = [
            str(CHECKOV),
            "-d",
            str(TF),
            "--framework",
            "terraform",
            "--skip-download",
            # the *.tftest.hcl files are tests, not infrastructure
            "--skip-path",
            "/tests/",
            "--quiet",
            "--compact",
            "-o",
            "json",
            "--output-file-path",
            str(report),
        ]
        run = _run(args, REPO, {**self.env, "LOG_LEVEL": "WARNING"})
        run.out = (report / "results_json.json").read_text() if (report / "results_json.json").exists() else run.out
        return run


EXAMPLE_VARS = {
    "environment": "ci",
    "region": "eu-west-1",
    "account_id": "123456789012",
    "availability_zones": ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
    "bucket_prefix": "acme-mlcp-ci",
    "replication_region": "eu-central-1",
    "image_tag": "abc1234",
    "code_version": "abc1234",
    "prometheus_url": "http://prometheus.mlcp.internal:9090",
}

FAKE_PROVIDER = """
  access_key                  = "AKIAIOSFODNN7EXAMPLE"
  secret_key                  = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  allowed_account_ids         = null
"""

# Written only into the temporary copy that is planned: fake credentials, no AWS call while
# configuring the provider, a local backend.
OFFLINE_OVERRIDE = (
    'terraform {\n  backend "local" {\n    path = "STATE_PATH"\n  }\n}\n'
    'provider "aws" {' + FAKE_PROVIDER + "}\n"
    'provider "aws" {\n  alias = "replica"' + FAKE_PROVIDER + "}\n"
)


@pytest.fixture(scope="module")
def session() -> Iterator[Session]:
    tmp = Path(tempfile.mkdtemp(prefix="mlcp-tf-"))
    s = Session(tmp)
    # Start the slow work at once; each test waits for the part it checks.
    s.start("example", lambda: s.validate_and_test("example"))
    s.start("plan", s.plan)
    s.start("bootstrap", lambda: s.validate_and_test("bootstrap"))
    if CHECKOV.exists():
        s.start("checkov", s.checkov)
    yield s
    s.pool.shutdown(wait=True, cancel_futures=True)
    shutil.rmtree(tmp, ignore_errors=True)


def unq(value: object) -> object:
    """python-hcl2 8 keeps string quotes; drop them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def hcl_files() -> list[Path]:
    return sorted(p for p in TF.rglob("*.tf") if ".terraform" not in p.parts)


# --- formatting and parsing ------------------------------------------------------------------


def test_terraform_fmt(session: Session) -> None:
    _run([TERRAFORM, "fmt", "-check", "-recursive", "-diff", str(TF)], REPO, session.env).check()


def test_every_file_parses_and_every_variable_is_typed_and_described() -> None:
    problems = []
    for path in hcl_files():
        doc = hcl2.load(path.open())
        for block in doc.get("variable", []):
            for name, body in block.items():
                for field in ("type", "description"):
                    if field not in body:
                        problems.append(f"{path.relative_to(REPO)}: variable {unq(name)} has no {field}")
    assert not problems, "\n".join(problems)


def test_addons_pin_every_chart_version() -> None:
    doc = hcl2.load((TF / "addons" / "main.tf").open())
    releases = {
        unq(n): b
        for block in doc["resource"]
        for kind, items in block.items()
        if unq(kind) == "helm_release"
        for n, b in items.items()
    }
    charts = {unq(b["chart"]): b for b in releases.values()}
    for chart in (
        "kube-prometheus-stack",
        "aws-load-balancer-controller",
        "cluster-autoscaler",
        "nvidia-device-plugin",
        "dcgm-exporter",
        "prometheus-cloudwatch-exporter",
        "vertical-pod-autoscaler",
    ):
        assert chart in charts, f"addons lack the {chart} release"
        version = str(unq(charts[chart].get("version", "")))
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{chart} is not pinned to an exact version: {version!r}"
    assert "mpi_operator" in releases and "mlcp_platform" in releases


def test_every_checkov_skip_gives_its_reason() -> None:
    bad = []
    for path in hcl_files():
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if "checkov:skip" in line and not re.search(r"checkov:skip=CKV2?_[A-Z0-9_]+:\s*\S.{15,}", line):
                bad.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not bad, "skips without a reason:\n" + "\n".join(bad)


# --- per root: init, validate, terraform test ---------------------------------------------------


@pytest.mark.parametrize("root", sorted(ROOTS))
def test_init_validate_and_terraform_test(session: Session, root: str) -> None:
    init, validate, test = session.start(root, lambda: session.validate_and_test(root)).result()
    init.check()
    validate.check()
    out = test.check()
    assert re.search(r"Success! \d+ passed, 0 failed", out), out[-3000:]
    if root == "example" and session.placeholder_files:
        print(f"state machines from tests/terraform/fixtures (not yet in statemachines/): {session.placeholder_files}")


# --- offline plan --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plan(session: Session) -> dict:  # type: ignore[type-arg]
    run, data = session.start("plan", session.plan).result()
    run.check()
    assert data is not None
    return data


def _module_of(address: str) -> str:
    parts = re.findall(r"module\.([a-z_]+)(?:\[[^\]]*\])?", address)
    return ".".join(parts) if parts else "(root)"


def test_plan_creates_the_expected_resources_per_module(plan: dict) -> None:  # type: ignore[type-arg]
    changes = plan["resource_changes"]
    actions = Counter(tuple(c["change"]["actions"]) for c in changes)
    assert set(actions) == {("create",)}, f"a fresh plan should only create: {actions}"
    per_module = Counter(_module_of(c["address"]) for c in changes if c["mode"] == "managed")
    expected = {
        "kms": 2,
        "network": 44,
        "storage": 15,  # + the datasets and EFS replication configurations
        "storage.logs_bucket": 7,
        "storage.data_bucket": 8,
        "storage.artifacts_bucket": 8,
        "storage.artifacts_replica": 7,
        "storage.data_replica": 7,
        "registry": 1,
        "images": 4,
        "eks": 8,
        "node_groups": 17,
        "eks_addons": 3,
        "functions": 65,  # + API routes (resource, method, integration), callers policy, schedule (rule, target, grant)
        "pipelines": 6,
        "irsa": 17,
        "(root)": 4,
    }
    assert dict(per_module) == expected, f"resource counts per module changed: {dict(per_module)}"


def _planned(plan: dict, rtype: str) -> list[tuple[dict, dict]]:  # type: ignore[type-arg]
    """(values, unknown) of each planned resource of a type."""
    return [
        (c["change"]["after"], c["change"]["after_unknown"])
        for c in plan["resource_changes"]
        if c["type"] == rtype and c["mode"] == "managed"
    ]


def _set(values: dict, unknown: dict, key: str) -> bool:  # type: ignore[type-arg]
    return values.get(key) not in (None, "") or unknown.get(key) is True


def test_plan_encrypts_every_store(plan: dict) -> None:  # type: ignore[type-arg]
    sse = _planned(plan, "aws_s3_bucket_server_side_encryption_configuration")
    algorithms = sorted(one["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"] for one, _ in sse)
    # Every bucket SSE-KMS except the access-log bucket (S3 access logging cannot use SSE-KMS).
    assert algorithms == ["AES256", "aws:kms", "aws:kms", "aws:kms", "aws:kms"], algorithms
    for values, _ in _planned(plan, "aws_dynamodb_table"):
        assert values["server_side_encryption"][0]["enabled"]
        assert values["point_in_time_recovery"][0]["enabled"]
    for values, _ in _planned(plan, "aws_efs_file_system"):
        assert values["encrypted"] is True
    for values, unknown in _planned(plan, "aws_cloudwatch_log_group"):
        assert _set(values, unknown, "kms_key_id"), f"log group {values['name']} is not KMS-encrypted"
        assert values["retention_in_days"] >= 365
    for rtype in ("aws_sqs_queue", "aws_sns_topic"):
        for values, unknown in _planned(plan, rtype):
            assert _set(values, unknown, "kms_master_key_id"), f"{rtype} {values['name']} is not encrypted"
    for values, unknown in _planned(plan, "aws_secretsmanager_secret"):
        assert _set(values, unknown, "kms_key_id")
    for values, _ in _planned(plan, "aws_launch_template"):
        for mapping in values["block_device_mappings"]:
            assert mapping["ebs"][0]["encrypted"] == "true"
    for values, _ in _planned(plan, "aws_kms_key"):
        assert values["enable_key_rotation"] is True


def test_plan_blocks_public_access_and_requires_imdsv2(plan: dict) -> None:  # type: ignore[type-arg]
    blocks = _planned(plan, "aws_s3_bucket_public_access_block")
    assert len(blocks) == len(_planned(plan, "aws_s3_bucket")) == 5
    for values, _ in blocks:
        assert all(
            values[k]
            for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
        )
    for values, _ in _planned(plan, "aws_launch_template"):
        assert values["metadata_options"][0]["http_tokens"] == "required"


def test_plan_replicates_artifacts_datasets_and_checkpoints_to_the_dr_region(plan: dict) -> None:  # type: ignore[type-arg]
    """With replication_region set (EXAMPLE_VARS), every store of record has a copy there."""
    dr = EXAMPLE_VARS["replication_region"]
    changes = {c["address"]: c["change"] for c in plan["resource_changes"] if c["mode"] == "managed"}
    buckets = {v["bucket"] for v, _ in _planned(plan, "aws_s3_bucket")}
    assert {f"acme-mlcp-ci-artifacts-{dr}", f"acme-mlcp-ci-data-{dr}"} <= buckets, buckets
    rules = {}
    for name in ("artifacts", "data"):
        change = changes[f"module.storage.aws_s3_bucket_replication_configuration.{name}[0]"]
        rule = change["after"]["rule"][0]
        assert rule["status"] == "Enabled" and rule["delete_marker_replication"] == [{"status": "Enabled"}]
        # the destination bucket and the replica key are only known after apply
        assert change["after_unknown"]["rule"][0]["destination"][0]["bucket"] is True
        assert change["after_unknown"]["rule"][0]["destination"][0]["encryption_configuration"][0]["replica_kms_key_id"]
        rules[name] = rule
    assert rules["data"]["filter"][0]["prefix"] == "datasets/"
    for versioning, _ in _planned(plan, "aws_s3_bucket_versioning"):
        assert versioning["versioning_configuration"][0]["status"] == "Enabled"
    efs = changes["module.storage.aws_efs_replication_configuration.checkpoints[0]"]
    assert efs["after"]["destination"][0]["region"] == dr
    assert efs["after_unknown"]["destination"][0]["kms_key_id"] is True, "the EFS replica must use the DR region's key"
    assert efs["after_unknown"]["source_file_system_id"] is True


def test_plan_functions_follow_the_contract(plan: dict) -> None:  # type: ignore[type-arg]
    functions = {v["function_name"]: (v, u) for v, u in _planned(plan, "aws_lambda_function")}
    names = {f"mlcp-ci-{n}" for n in ALL_FUNCTIONS}
    assert set(functions) == names
    for name, (values, _) in functions.items():
        assert values["runtime"] == "python3.11"
        assert (
            values["handler"] == "app.app"
            if name.endswith("api_handler")
            else values["handler"] == "app." + name.removeprefix("mlcp-ci-")
        )
    # The settings are known only after apply (bucket names, queue URL...) and hold the API
    # token: their keys are asserted by `terraform test` (envs/example/tests/platform.tftest.hcl).
    for c in plan["resource_changes"]:
        if c["type"] == "aws_lambda_function":
            env_unknown = c["change"]["after_unknown"].get("environment", [{}])[0].get("variables")
            env_sensitive = c["change"]["after_sensitive"].get("environment", [{}])[0].get("variables")
            assert env_unknown is True or env_sensitive is True, f"{c['address']} has no CONTROL_* settings"


# --- checkov -----------------------------------------------------------------------------------


def test_checkov_finds_no_failed_check(session: Session) -> None:
    if not CHECKOV.exists():
        pytest.fail(
            f"checkov is not installed at {CHECKOV}: scripts/setup.sh installs it from requirements/checkov.txt"
        )
    run = session.start("checkov", session.checkov).result()
    try:
        reports = json.loads(run.out)
    except json.JSONDecodeError:
        pytest.fail(f"checkov gave no JSON report (rc {run.rc}):\n{run.out[-3000:]}")
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{f['check_id']} {f['resource']} ({f['file_path']}): {f['check_name']}"
        for r in reports
        for f in r["results"].get("failed_checks", [])
    ]
    passed = sum(r["summary"]["passed"] for r in reports)
    skipped = sum(r["summary"]["skipped"] for r in reports)
    parsing_errors = sum(r["summary"]["parsing_errors"] for r in reports)
    print(f"checkov: {passed} passed, {len(failed)} failed, {skipped} skipped, {parsing_errors} parsing errors")
    assert parsing_errors == 0, "checkov could not parse every file (see LOG_LEVEL=DEBUG)"
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert passed > 100


# --- the mlcp-platform chart --------------------------------------------------------------------

RENDER = r"""
import json, sys
import helm_python as helm
chart, values = sys.argv[1], json.loads(sys.argv[2])
lint = helm.lint(chart, values=values)
with helm.Chart.load(chart) as c:
    out = c.render(values, name="mlcp-platform", namespace="kube-system")
print(json.dumps({"lint": lint, "manifests": out}))
"""


def test_platform_chart_lints_and_renders() -> None:
    if not HELM_PYTHON.exists():
        pytest.fail(
            f"helm-python-sdk is not installed at {HELM_PYTHON}: "
            "scripts/setup.sh installs it from requirements/helm.txt"
        )
    groups = [
        g
        for f in sorted((REPO / "dashboards" / "rules").glob("*.yml"))
        for g in yaml.safe_load(f.read_text())["groups"]
    ]
    values = {
        "checkpoints": {"volumeHandle": "fs-0123::fsap-0123"},
        "serviceAccounts": {
            "training": {"name": "training", "roleArn": "arn:aws:iam::123456789012:role/t"},
            "inference": {"name": "inference", "roleArn": "arn:aws:iam::123456789012:role/i"},
        },
        "prometheusRules": {"groups": groups},
    }
    proc = subprocess.run(
        [str(HELM_PYTHON), "-c", RENDER, str(TF / "charts" / "mlcp-platform"), json.dumps(values)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert not result["lint"]["errors"], result["lint"]
    docs = [d for text in result["manifests"].values() for d in yaml.safe_load_all(text) if d]
    by_kind: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)

    namespaces = {n["metadata"]["name"]: n["metadata"]["labels"] for n in by_kind["Namespace"]}
    assert set(namespaces) == {"ml-training", "ml-serving"}
    assert namespaces["ml-serving"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespaces["ml-training"]["pod-security.kubernetes.io/enforce"] in {"baseline", "restricted"}
    deny = {
        (p["metadata"]["namespace"])
        for p in by_kind["NetworkPolicy"]
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and "ingress" not in p["spec"]
        and "egress" not in p["spec"]
    }
    assert deny == {"ml-training", "ml-serving"}, "each namespace needs a default-deny policy"
    bindings = by_kind["RoleBinding"]
    assert {b["metadata"]["namespace"] for b in bindings} == {"ml-training", "ml-serving"}
    assert all(s["kind"] == "Group" and s["name"] == "mlcp:control-plane" for b in bindings for s in b["subjects"])
    assert "ClusterRoleBinding" not in by_kind, "the control plane gets no cluster-wide rights"
    claim = by_kind["PersistentVolumeClaim"][0]
    assert (claim["metadata"]["name"], claim["metadata"]["namespace"]) == ("training-checkpoints", "ml-training")
    assert by_kind["PersistentVolume"][0]["spec"]["csi"]["volumeHandle"] == "fs-0123::fsap-0123"
    sas = {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in by_kind["ServiceAccount"]}
    assert sas == {("ml-training", "training"), ("ml-serving", "inference")}
    assert len(by_kind.get("PrometheusRule", [])) == len(groups)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
