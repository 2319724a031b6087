"""The benchmark's second peer: LitServe (PyPI `litserve`), the server a user might pick instead.

Run inside its own virtualenv (.venv-litserve, from requirements/bench-litserve.txt: `make bench-peers`),
never the project's.

`python benchmarks/model_server_litserve.py MODEL_DIR PORT WORKERS` serves the benchmark's artifact
(TorchScript `model.pt`, sha256-checked against metadata.json) on 127.0.0.1:PORT at /invocations,
with the same JSON in ({"instances": rows}) and out ({"predictions", "probabilities"}) as ours.
This file imports nothing from the project (its virtualenv has none of it); the functions at the
bottom run in the benchmark's own process to start and stop it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LITSERVE_VENV = REPO / ".venv-litserve"


try:  # only in .venv-litserve; the benchmark's own process imports this module for the functions below
    import litserve as ls
except ImportError:
    ls = None

if ls is not None:

    class TorchScriptAPI(ls.LitAPI):  # module level: LitServe pickles it into its worker processes
        def __init__(self, model_dir: str) -> None:
            super().__init__(api_path="/invocations")
            self.model_dir = Path(model_dir)

        def setup(self, device: str) -> None:
            import io

            import torch

            torch.set_num_threads(1)
            metadata = json.loads((self.model_dir / "metadata.json").read_text())
            raw = (self.model_dir / metadata.get("artifact", "model.pt")).read_bytes()
            if hashlib.sha256(raw).hexdigest() != metadata["sha256"]:
                raise RuntimeError("sha256 mismatch")
            self.model = torch.jit.load(io.BytesIO(raw), map_location="cpu").eval()
            self.classes = metadata["classes"]

        def decode_request(self, request):  # type: ignore[no-untyped-def]  # unannotated: LitServe passes the JSON
            import numpy as np

            rows = request["instances"] if isinstance(request, dict) else request
            return np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)

        def predict(self, rows: Any) -> Any:
            import torch

            with torch.inference_mode():
                return torch.softmax(self.model(torch.from_numpy(rows)), dim=1).numpy()

        def encode_response(self, probabilities):  # type: ignore[no-untyped-def]  # unannotated: LitServe's JSON
            indices = probabilities.argmax(axis=1).tolist()
            return {"predictions": [self.classes[i] for i in indices], "probabilities": probabilities.tolist()}


def serve(model_dir: Path, port: int, workers: int) -> None:
    server = ls.LitServer(
        TorchScriptAPI(str(model_dir)),
        accelerator="cpu",
        workers_per_device=workers,
        timeout=30,
    )
    server.run(host="127.0.0.1", port=port, num_api_servers=workers, generate_client_file=False, log_level="warning")


def litserve_available() -> str | None:
    """None when LitServe can run here, else why not."""
    if not (LITSERVE_VENV / "bin" / "python").exists():
        return f"no {LITSERVE_VENV} (`make bench-peers` installs it)"
    check = subprocess.run([str(LITSERVE_VENV / "bin" / "python"), "-c", "import litserve"], capture_output=True)
    if check.returncode != 0:
        return f"litserve does not import in {LITSERVE_VENV}"
    return None


def start_litserve(model_dir: Path, port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
    return subprocess.Popen(
        [str(LITSERVE_VENV / "bin" / "python"), str(Path(__file__).resolve()), str(model_dir), str(port), str(workers)],
        env=env,
        stdout=open(log, "wb"),  # noqa: SIM115 - lives as long as the server
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_session(launcher: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM to the session the launcher leads, then SIGKILL to what is left (by its process group)."""
    if launcher.poll() is None:
        os.killpg(launcher.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            launcher.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(launcher.pid, signal.SIGKILL)
    launcher.wait(timeout=5)


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
