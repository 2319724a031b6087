"""The benchmark's baseline: the stock sagemaker-inference toolkit server (Multi Model Server).

MMS imports this module in its Python workers (`default_service_handler`), and insists that it
defines exactly one class: `HandlerService` below. It serves the same artifact through the same
`ModelHandler` (model_fn/input_fn/predict_fn/output_fn) our server uses, so the comparison is
between serving stacks, not handlers.

The functions below run in the benchmark's own process: they build the artifact and start/stop
MMS from its separate virtualenv (.venv-mms), kept off the system paths it defaults to (/opt/ml, /etc)
with SAGEMAKER_BASE_DIR, MMS_CONFIG_FILE, loopback addresses, TMPDIR and LOG_LOCATION.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from sagemaker_inference.default_handler_service import DefaultHandlerService
from sagemaker_inference.transformer import Transformer

from workloads.inference.handler import ModelHandler

REPO = Path(__file__).resolve().parents[1]
MMS_VENV = REPO / ".venv-mms"


class HandlerService(DefaultHandlerService):
    def __init__(self) -> None:
        super().__init__(transformer=Transformer(default_inference_handler=ModelHandler()))


def build_artifact(folder: Path, n_features: int = 8, n_classes: int = 3, hidden: int = 64, seed: int = 0) -> str:
    """A classifier the size of the training job's (two hidden ReLU layers), normalisation folded
    into the first layer; writes model.pt and metadata.json, returns the sha256."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    mean = torch.randn(n_features)
    std = torch.rand(n_features) + 0.5
    first = nn.Linear(n_features, hidden)
    with torch.no_grad():  # W((x - mean) / std) + b == (W / std) x + (b - W (mean / std))
        first.bias.sub_(first.weight @ (mean / std))
        first.weight.div_(std)
    model = nn.Sequential(first, nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(model.eval()), buffer)
    model_pt = buffer.getvalue()
    sha = hashlib.sha256(model_pt).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.pt").write_bytes(model_pt)
    metadata = {
        "model_name": "bench",
        "run_id": "bench-v1",
        "feature_names": [f"f{i}" for i in range(n_features)],
        "classes": list(range(n_classes)),
        "artifact": "model.pt",
        "sha256": sha,
        "metrics": {},
        "hyperparameters": {"hidden_units": hidden},
        "workers": 1,
        "framework": "pytorch+horovod",
        "torch_version": torch.__version__,
        "horovod_version": "n/a",
    }
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return sha


def mms_available() -> str | None:
    """None when MMS can run here, else why not."""
    if not (MMS_VENV / "bin" / "multi-model-server").exists():
        return f"no multi-model-server in {MMS_VENV} (`make bench-peers` installs it)"
    if subprocess.run(["which", "java"], capture_output=True).returncode != 0:
        return "no java on the PATH (MMS's frontend is Java)"
    return None


def start_mms(model_dir: Path, scratch: Path, port: int, workers: int | None = None) -> subprocess.Popen[bytes]:
    """Starts the toolkit's `start_model_server` (which starts MMS) serving `model_dir` on 127.0.0.1:port."""
    base = scratch / "opt-ml"
    (base / "model").parent.mkdir(parents=True, exist_ok=True)
    if not (base / "model").exists():
        (base / "model").symlink_to(model_dir.resolve(), target_is_directory=True)
    tmp = scratch / "tmp"
    logs = scratch / "logs"
    tmp.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "MMS_", "MODEL_"))},
        "PATH": f"{MMS_VENV / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PYTHONPATH": str(REPO),
        "SAGEMAKER_BASE_DIR": str(base),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "MMS_INFERENCE_ADDRESS": f"http://127.0.0.1:{port}",
        "MMS_MANAGEMENT_ADDRESS": f"http://127.0.0.1:{port + 1}",
        "TMPDIR": str(tmp),
        "TEMP": str(tmp),
        "LOG_LOCATION": str(logs),
        "METRICS_LOCATION": str(logs),
        "OMP_NUM_THREADS": "1",
    }
    if workers:
        env["SAGEMAKER_MODEL_SERVER_WORKERS"] = str(workers)
    code = (
        "from sagemaker_inference import model_server\n"
        f"model_server.MMS_CONFIG_FILE = {str(scratch / 'sagemaker-mms.properties')!r}\n"
        "model_server.start_model_server(handler_service='benchmarks.model_server_mms')\n"
    )
    return subprocess.Popen(
        [str(MMS_VENV / "bin" / "python"), "-c", code],
        env=env,
        cwd=str(scratch),
        stdout=open(logs / "start_model_server.out", "wb"),  # noqa: SIM115 - lives as long as the server
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def mms_processes(launcher: subprocess.Popen[bytes]) -> list[int]:
    """Every process of the session the launcher leads (it was started with start_new_session):
    the launcher, MMS's Java frontend (re-parented to init once `multi-model-server --start`
    returns) and its Python workers. Found by session id, so nothing else on the host is touched."""
    import psutil

    pids = []
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getsid(process.pid) == launcher.pid:
                pids.append(process.pid)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return pids


def stop_mms(launcher: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM to the launcher (it forwards to MMS); then SIGKILL whatever it left, by PID only —
    MMS's Python workers can outlive the frontend."""
    pids = mms_processes(launcher)
    if launcher.poll() is None:
        launcher.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.2)
        launcher.poll()
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    launcher.wait(timeout=5)


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
