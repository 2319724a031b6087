"""The serving loop end to end, shared by the e2e tests that run it on the local clusters and on the
EKS adapters: deploy v1, blue-green to v2 under load, a fault in v2 after the promotion, the real
Prometheus fires, the real Alertmanager delivers, traffic is back on v1, and the load generator
sees no failed request outside the fault itself."""

import time
import uuid
from typing import Any

from control.demo.serving import Traffic, alert_rollback, deploy, report, served_by, wait_for_phase
from control.demo.training import run_training_demo
from tests.support import wait_for
from tests.support.api import api_client
from workloads.training.synthetic import synthetic_csv


def alert_after_promotion_rolls_back_to_last_known_good(embedded: Any, endpoints: dict[str, Any], aws: Any) -> None:
    model = f"serve-{uuid.uuid4().hex[:6]}"
    deployment = f"{model}-api"
    api = api_client(endpoints)
    traffic = Traffic(embedded, deployment)
    try:
        trained = run_training_demo(embedded, model=model, rows=1500, seed=11, dataset_version="v1")
        assert trained.ok, trained.reason
        first = deploy(api, traffic, deployment, model, 1)
        assert first["phase"] == "COMPLETED" and first["active_version"] == 1

        # A second version through the API with auto-deploy: the pipeline's StartRollout step rolls
        # it out. (Dropping the data also starts the default pipeline, which registers one more
        # version without deploying it: the API run has other hyperparameters, so it is its own run.)
        key = f"datasets/{model}/v2/data.csv"
        aws("s3").put_object(Bucket=endpoints["data_bucket"], Key=key, Body=synthetic_csv(1500, seed=12).encode())
        run = api.start_training_run(
            {
                "dataset_uri": f"s3://{endpoints['data_bucket']}/{key}",
                "hyperparameters": {"epochs": 4},
                "gate": {"metric": "val_accuracy", "threshold": 0.5},
                "auto_deploy": deployment,
            },
        )
        registered = wait_for(
            lambda: (r := api.get_training_run(run["run_id"])).get("status") == "REGISTERED" and r,
            timeout=300,
            interval=1,
            what="the API run to register",
        )
        v2 = registered["model_version"]
        promoted = wait_for_phase(
            api, traffic, deployment, {"COMPLETED", "ROLLED_BACK", "FAILED"}, 300, target_version=v2
        )
        assert promoted["phase"] == "COMPLETED" and promoted["active_version"] == v2
        assert api.get_version(model, v2)["aliases"] == ["production"]
        switched_at = time.time()
        time.sleep(3)

        outcome = alert_rollback(embedded, api, traffic, deployment, bad_version=v2)
        time.sleep(3)
    finally:
        samples = traffic.stop()

    assert outcome["status"]["phase"] == "ROLLED_BACK" and outcome["status"]["active_version"] == 1
    assert outcome["alert"] is not None and outcome["alert"]["actor"] == "alert"
    assert "InferenceHighErrorRatio" in outcome["alert"]["reason"]
    assert outcome["back_at"] - outcome["fault_at"] < 60
    active = samples[deployment]
    assert served_by(active, after=outcome["back_at"] + 1) == {"1"}
    assert str(v2) in served_by(active, after=switched_at)
    result = report(samples, deployment, outcome["fault_at"], bad_version=v2)
    assert result["platform_failures"] == 0, result
    assert api.get_version(model, 1)["aliases"] == ["production"]
    history = api.history(model)["history"]
    assert any(h["action"] == "rolled-back" for h in history)
