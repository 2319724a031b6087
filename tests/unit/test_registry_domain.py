import pytest

from control.domain.registry import HistoryEntry, VersionStatus, check_transition, serving_at
from control.errors import Conflict, InvalidInput
from tests.support.lineage import lineage


def test_lineage_requires_a_real_digest_and_s3_artifact():
    with pytest.raises(InvalidInput):
        lineage(artifact_sha256="xyz")
    with pytest.raises(InvalidInput):
        lineage(artifact_uri="/tmp/model.pt")


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        (VersionStatus.REGISTERED, VersionStatus.APPROVED, True),
        (VersionStatus.REGISTERED, VersionStatus.REJECTED, True),
        (VersionStatus.REGISTERED, VersionStatus.DEPLOYED, False),
        (VersionStatus.REJECTED, VersionStatus.APPROVED, False),
        (VersionStatus.APPROVED, VersionStatus.DEPLOYED, True),
        (VersionStatus.DEPLOYED, VersionStatus.RETIRED, True),
    ],
)
def test_status_transitions(current, target, allowed):
    if allowed:
        check_transition(current, target)
    else:
        with pytest.raises(Conflict):
            check_transition(current, target)


def test_what_served_production_at_a_time():
    def alias_set(at, version):
        return HistoryEntry("m", at, "a", "alias-set", "r", version, {"alias": "production"})

    history = [
        alias_set("2026-01-01T00:00:00.000000Z", 1),
        HistoryEntry("m", "2026-01-02T00:00:00.000000Z", "a", "registered", "r", 2),
        alias_set("2026-01-03T00:00:00.000000Z", 2),
        alias_set("2026-01-04T00:00:00.000000Z", 1),
    ]
    assert serving_at(history, "2025-12-31T00:00:00.000000Z") is None
    assert serving_at(history, "2026-01-02T12:00:00.000000Z") == 1
    assert serving_at(history, "2026-01-03T12:00:00.000000Z") == 2
    assert serving_at(history, "2026-02-01T00:00:00.000000Z") == 1
