"""The three patch formats a real API server applies, chosen by Content-Type.

- strategic merge patch (built-in kinds only): lists merged by their `x-kubernetes-patch-merge-key`
  where the schema says `x-kubernetes-patch-strategy: merge`, replaced otherwise; `null` deletes a
  key; the `$patch: replace|delete` and `$retainKeys` directives;
- JSON merge patch (RFC 7386): maps merged, lists replaced, `null` deletes;
- JSON patch (RFC 6902): add, remove, replace, move, copy, test.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.support.kube_apiserver.schemas import SchemaNode

STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"


class PatchError(ValueError):
    """The patch cannot be applied (bad path, failed test op, bad directive): a 422 from the server."""


def json_merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge(result.get(key), value)
    return result


def strategic_merge(target: Any, patch: Any, node: SchemaNode) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    if directive is not None:
        raise PatchError(f"unknown patch type: {directive!r}")
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$"):
            if key in ("$retainKeys",) or key.startswith("$setElementOrder/"):
                continue
            raise PatchError(f"unknown patch directive {key!r}")
        if value is None:
            result.pop(key, None)
            continue
        child = node.child(key) or SchemaNode(None, {})
        if isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, child)
        else:
            merged = strategic_merge(result.get(key), value, child)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    if retain is not None:
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(target: Any, patch: list[Any], node: SchemaNode) -> list[Any]:
    key = node.patch_merge_key
    if "merge" not in node.patch_strategy.split(","):
        return [x for x in copy.deepcopy(patch) if not (isinstance(x, dict) and x.get("$patch") == "replace")]
    current = copy.deepcopy(target) if isinstance(target, list) else []
    if key is None:  # a merged list of primitives: a union, keeping order
        return current + [x for x in patch if x not in current]
    item = node.item()
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [x for x in copy.deepcopy(patch) if not (isinstance(x, dict) and "$patch" in x)]
    for element in patch:
        if not isinstance(element, dict) or key not in element:
            raise PatchError(f"map: {element!r} does not contain declared merge key: {key}")
        index = next((i for i, x in enumerate(current) if isinstance(x, dict) and x.get(key) == element[key]), None)
        if element.get("$patch") == "delete":
            if index is not None:
                current.pop(index)
            continue
        if index is None:
            current.append(strategic_merge({}, element, item))
        else:
            current[index] = strategic_merge(current[index], element, item)
    return current


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"JSON pointer {path!r} does not start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    for part in parts[:-1]:
        try:
            doc = doc[int(part)] if isinstance(doc, list) else doc[part]
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise PatchError(f"doc is missing path: {path!r}") from exc
    return doc


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, path)
    try:
        return parent[int(parts[-1])] if isinstance(parent, list) else parent[parts[-1]]
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise PatchError(f"doc is missing path: {path!r}") from exc


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    parent = _parent(doc, parts, path)
    try:
        return parent.pop(int(parts[-1])) if isinstance(parent, list) else parent.pop(parts[-1])
    except (KeyError, IndexError, ValueError) as exc:
        raise PatchError(f"unable to remove nonexistent key: {parts[-1]!r} (path {path!r})") from exc


def _add(doc: Any, path: str, value: Any, *, replace: bool) -> Any:
    parts = _pointer(path)
    if not parts:
        return copy.deepcopy(value)
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if index > len(parent) or (replace and index >= len(parent)):
            raise PatchError(f"index out of range: {path!r}")
        if replace:
            parent[index] = copy.deepcopy(value)
        else:
            parent.insert(index, copy.deepcopy(value))
    elif isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f"replace operation does not apply: doc is missing key: {path!r}")
        parent[last] = copy.deepcopy(value)
    else:
        raise PatchError(f"doc is missing path: {path!r}")
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise PatchError("a JSON patch is a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        kind, path = op.get("op"), op.get("path", "")
        if kind == "add":
            doc = _add(doc, path, op["value"], replace=False)
        elif kind == "replace":
            doc = _add(doc, path, op["value"], replace=True)
        elif kind == "remove":
            _remove(doc, path)
        elif kind in ("move", "copy"):
            value = _remove(doc, op["from"]) if kind == "move" else copy.deepcopy(_get(doc, op["from"]))
            doc = _add(doc, path, value, replace=False)
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise PatchError(f"testing value {path!r} failed")
        else:
            raise PatchError(f"unexpected kind: {kind!r}")
    return doc
