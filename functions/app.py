"""The Chalice app: wiring only. Handlers live in chalicelib/ blueprints."""

from __future__ import annotations

import os
import sys

# Packaged (scripts/package_functions.sh), `control` sits next to this file; in the repository it
# is one folder up.
_here = os.path.dirname(os.path.abspath(__file__))
if not os.path.isdir(os.path.join(_here, "control")):
    sys.path.insert(0, os.path.dirname(_here))

from pathlib import Path  # noqa: E402

from chalice import Chalice, Response  # noqa: E402
from chalicelib.deployments_api import deployments_api  # noqa: E402
from chalicelib.events import events, on_alert_notification, on_dataset_uploaded  # noqa: E402
from chalicelib.models_api import models_api  # noqa: E402
from chalicelib.runtime import use_platform  # noqa: E402
from chalicelib.schedules import schedules, sweep_rollouts  # noqa: E402
from chalicelib.tasks import (  # noqa: E402
    check_training,
    evaluate_model,
    launch_training,
    reconcile_rollout,
    record_run_failure,
    register_model,
    stage_dataset,
    start_rollout,
    tasks,
    validate_dataset,
)
from chalicelib.training_api import training_api  # noqa: E402

# Lambda's handler strings are `app.<name>` (terraform/modules/functions/main.tf): every event and
# task handler is an attribute of this module, the REST API is `app.app`. `use_platform` is how the
# embedded runtime hands the handlers its platform (control/ never imports the functions).
__all__ = [
    "app",
    "use_platform",
    "check_training",
    "evaluate_model",
    "launch_training",
    "on_alert_notification",
    "on_dataset_uploaded",
    "reconcile_rollout",
    "record_run_failure",
    "register_model",
    "stage_dataset",
    "start_rollout",
    "sweep_rollouts",
    "validate_dataset",
]

OPENAPI = Path(_here) / "chalicelib" / "openapi.json"
app = Chalice(app_name="mlcp")
app.register_blueprint(training_api)
app.register_blueprint(models_api)
app.register_blueprint(deployments_api)
app.register_blueprint(events)
app.register_blueprint(tasks)
app.register_blueprint(schedules)


@app.route("/healthz", methods=["GET"])
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.route("/openapi.json", methods=["GET"])
def openapi() -> Response:
    return Response(body=OPENAPI.read_text(), status_code=200, headers={"Content-Type": "application/json"})
