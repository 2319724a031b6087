"""The model server (docs/contracts.md, "Model server").

Layers, each knowing only the ones before it:
  repository.py  fetch, verify (sha256) and load a training run's artifact (S3 or a path)
  lifecycle.py   the served model's phases: loading -> ready | failed, draining at exit
  handler.py     SageMaker's model_fn / input_fn / predict_fn / output_fn (sagemaker-inference)
  dataplane.py   one invocation, protocol-agnostic: decode -> predict -> encode, per-stage latency
  app.py         HTTP endpoints (ASGI) and the app factory; errors.py maps errors to HTTP status
  serve.py       the process: settings, listeners, uvicorn, graceful shutdown
"""
