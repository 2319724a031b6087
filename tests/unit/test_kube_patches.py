"""The test API server's patch formats, against the strategies in the Kubernetes 1.31 schemas.

Each case is how kube-apiserver applies the patch (strategic merge by the schema's merge keys and
strategies and its directives; JSON merge patch, RFC 7386; JSON patch, RFC 6902).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.kube_apiserver.patches import PatchError, json_merge, json_patch, strategic_merge
from tests.support.kube_apiserver.schemas import schemas_for


def deployment_root() -> Any:
    schema = schemas_for().for_kind("apps/v1", "Deployment")
    assert schema is not None
    return schema.root


def pod_spec(**spec: Any) -> dict[str, Any]:
    return {"spec": {"template": {"spec": spec}}}


BASE = pod_spec(
    containers=[
        {
            "name": "app",
            "image": "a:1",
            "args": ["--x"],
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        },
        {"name": "sidecar", "image": "s:1"},
    ],
    tolerations=[{"key": "gpu", "operator": "Exists"}],
    volumes=[{"name": "tmp", "emptyDir": {}}],
)


def test_lists_with_a_merge_key_merge_by_it_and_others_are_replaced() -> None:
    patch = pod_spec(
        containers=[
            {"name": "app", "args": ["--y"], "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]}
        ],
        tolerations=[{"key": "other", "operator": "Exists"}],
    )
    result = strategic_merge(BASE, patch, deployment_root())["spec"]["template"]["spec"]
    app, sidecar = result["containers"]
    assert app["args"] == ["--y"]  # atomic list: replaced
    assert app["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}]
    assert sidecar == {"name": "sidecar", "image": "s:1"}
    assert result["tolerations"] == [{"key": "other", "operator": "Exists"}]  # no patch strategy: replaced


def test_the_delete_and_replace_directives() -> None:
    patch = pod_spec(
        containers=[{"name": "sidecar", "$patch": "delete"}],
        volumes=[{"$patch": "replace"}, {"name": "new", "emptyDir": {}}],
    )
    result = strategic_merge(BASE, patch, deployment_root())["spec"]["template"]["spec"]
    assert [c["name"] for c in result["containers"]] == ["app"]
    assert result["volumes"] == [{"name": "new", "emptyDir": {}}]
    replaced = strategic_merge(
        BASE, {"spec": {"template": {"spec": {"$patch": "replace", "containers": []}}}}, deployment_root()
    )
    assert replaced["spec"]["template"]["spec"] == {"containers": []}


def test_null_deletes_a_key_and_retain_keys_drops_the_others() -> None:
    base = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}, "paused": True}}
    patch = {"spec": {"paused": None, "strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert strategic_merge(base, patch, deployment_root()) == {"spec": {"strategy": {"type": "Recreate"}}}


def test_a_merged_element_without_its_merge_key_is_refused() -> None:
    with pytest.raises(PatchError, match="merge key: name"):
        strategic_merge(BASE, pod_spec(containers=[{"image": "x"}]), deployment_root())
    with pytest.raises(PatchError, match="unknown patch"):
        strategic_merge(BASE, {"spec": {"$patch": "merge-all"}}, deployment_root())


def test_a_json_merge_patch_replaces_lists_and_null_deletes() -> None:
    result = json_merge(BASE, pod_spec(containers=[{"name": "only"}], volumes=None))
    assert result["spec"]["template"]["spec"] == {
        "containers": [{"name": "only"}],
        "tolerations": BASE["spec"]["template"]["spec"]["tolerations"],
    }
    assert json_merge({"a": 1}, [1, 2]) == [1, 2]


def test_a_json_patch_applies_each_operation_or_none() -> None:
    doc = {"a": {"b": [1, 2]}, "c": "x"}
    ops = [
        {"op": "add", "path": "/a/b/1", "value": 9},
        {"op": "move", "from": "/c", "path": "/d"},
        {"op": "copy", "from": "/a/b", "path": "/e"},
        {"op": "replace", "path": "/a/b/0", "value": 0},
        {"op": "remove", "path": "/e/2"},
        {"op": "test", "path": "/d", "value": "x"},
    ]
    assert json_patch(doc, ops) == {"a": {"b": [0, 9, 2]}, "d": "x", "e": [1, 9]}
    assert doc == {"a": {"b": [1, 2]}, "c": "x"}  # the original is untouched
    for bad in (
        [{"op": "remove", "path": "/nope"}],
        [{"op": "replace", "path": "/missing", "value": 1}],
        [{"op": "test", "path": "/c", "value": "y"}],
        [{"op": "jump", "path": "/c"}],
        {"op": "add"},
    ):
        with pytest.raises(PatchError):
            json_patch(doc, bad)
