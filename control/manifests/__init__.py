"""Pure rendering of the Kubernetes objects the control plane creates (no `kubernetes` import here).

Every renderer returns plain dicts that the Kubernetes adapter sends as-is, that the local
runtime interprets, and that the contract tests validate against the published schemas.
"""

from control.manifests.config import ManifestConfig
from control.manifests.serving import ServingVersion, render_serving_stack
from control.manifests.training import render_mpijob

__all__ = ["ManifestConfig", "ServingVersion", "render_mpijob", "render_serving_stack"]
