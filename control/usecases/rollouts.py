"""Blue-green rollouts and rollbacks: start, reconcile step by step, act on alerts.

Decide, then act: `reconcile` (pure, control.domain.rollout) decides the actions and the new
status; this module measures, observes, applies the actions through the ServingCluster port
and writes the status only if its revision is unchanged. An alert or a user never moves
traffic directly: they record a rollback intent and the next reconcile step acts on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from control.domain.alert_payload import AlertPayload
from control.domain.alert_policy import AlertPolicy, decide_alert_actions
from control.domain.canary_step import CanaryProgress, canary_progress
from control.domain.deployments import (
    AlertRollback,
    AlertsHandled,
    DeploymentCommand,
    DeploymentRecord,
    PipelineRollout,
    PipelineRolloutStarted,
    RolloutRequest,
    StepOutcome,
    StepRequest,
    StrategyChange,
)
from control.domain.names import check_deployment_name
from control.domain.registry import Alias, HistoryEntry, VersionStatus, iso
from control.domain.rollout import (
    MIN_REQUEUE_SECONDS,
    AnalysisSample,
    Decision,
    EnsureDeployment,
    IntentSource,
    ManualPromotion,
    MarkLastKnownGood,
    Observed,
    Phase,
    RecordEvent,
    RollbackIntent,
    RolloutSpec,
    RolloutStatus,
    ScaleDeployment,
    ServiceRole,
    SetTrafficWeight,
    StartPreviewTraffic,
    StopPreviewTraffic,
    SwitchSelector,
    VersionObservation,
    analysis_request,
    reconcile,
    request_promotion,
    request_rollback,
    start_rollout,
)
from control.errors import (
    AlreadyServing,
    Conflict,
    ControlError,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    TransientError,
)
from control.manifests.config import LABEL_VERSION, ManifestConfig
from control.manifests.serving import (
    PreviewTraffic,
    ServingVersion,
    canary_service_name,
    canary_weight_of,
    deployment_name,
    ingress_weights,
    preview_service_name,
    preview_traffic_job_name,
    render_ingress,
    render_network_policy,
    render_preview_traffic_job,
    render_preview_traffic_network_policy,
    render_service,
    render_version,
    version_selector,
)
from control.ports import Platform

DEPLOYABLE = frozenset({VersionStatus.APPROVED, VersionStatus.DEPLOYED, VersionStatus.RETIRED})


# -- starting ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RolloutStarted:
    status: RolloutStatus
    execution_arn: str


def start(platform: Platform, deployment: str, request: RolloutRequest, actor: str) -> RolloutStarted:
    """`POST /deployments/{name}/rollouts`: roll the request's model version out to `deployment`."""
    check_deployment_name(deployment)
    model, version = request.model, request.version
    registered = platform.registry.get_version(model, version)
    if registered.status not in DEPLOYABLE:
        raise Conflict(
            f"{model} v{version} is {registered.status.value}; approve it before deploying "
            f"(POST /models/{model}/versions/{version}/approve)",
            field="version",
        )
    record = platform.deployments.get(deployment)
    if record is not None and record.status.phase.in_progress:
        raise Conflict(
            f"{deployment} is already rolling out v{record.status.target_version} "
            f"({record.status.phase.value}); wait for it or roll back",
            field="deployment",
        )
    if record is not None and record.spec.model != model:
        raise Conflict(f"{deployment} serves model {record.spec.model}, not {model}", field="model")
    previous = None if record is None else (record.status.stable_version or record.status.active_version)
    if previous == version:
        raise AlreadyServing(f"{deployment} already serves {model} v{version}", field="version")
    spec = RolloutSpec.parse(
        {
            **platform.settings.rollout_defaults,
            **request.overrides,
            "deployment": deployment,
            "model": model,
            "version": version,
            "previous_version": previous,
            "sample_request_uri": registered.lineage.sample_request_uri,
        }
    )
    # This rollout's strategy if the request names one, else the deployment's (blue-green by default).
    strategy = request.strategy.canary if request.strategy is not None else (record.strategy if record else None)
    if strategy is not None:
        spec = replace(spec, strategy=strategy)  # validated again: a canary needs a stable version
    policy = request.alert_policy or (record.policy if record else AlertPolicy())
    status = start_rollout(spec, platform.clock())
    if record is not None:
        status = replace(status, revision=record.status.revision + 1)
        _end_rollback_window(platform, record, spec)
    platform.deployments.put(
        DeploymentRecord(
            spec,
            status,
            policy,
            record.handled_alerts if record else (),
            loop_name(deployment, status.revision),
            strategy=record.strategy if record else None,
        ),
        expected_revision=None if record is None else record.status.revision,
    )
    how = f"canary ({strategy.describe()})" if strategy else "blue-green"
    _history(
        platform, spec, "rollout-requested", f"{actor} asked for v{version} (previous v{previous}) by {how}", actor
    )
    return RolloutStarted(status, _run_loop(platform, deployment, loop_name(deployment, status.revision)))


def _end_rollback_window(platform: Platform, record: DeploymentRecord, spec: RolloutSpec) -> None:
    """A new rollout ends the last one's rollback window: its still-warm blue is neither the new blue
    nor the new green, and nothing would scale it down later."""
    warm = record.spec.previous_version
    if record.status.phase is not Phase.COMPLETED or warm in (None, spec.previous_version, spec.version):
        return
    try:
        if platform.serving.deployment_readiness(deployment_name(spec.deployment, warm)).desired == 0:
            return
    except NotFound:
        return
    platform.serving.scale_deployment(deployment_name(spec.deployment, warm), 0)
    _history(platform, spec, "rollback-window-ended", f"v{warm} scaled to 0: v{spec.version} is rolling out", "rollout")


def loop_name(deployment: str, revision: int) -> str:
    """The reconcile loop started at `revision`: its execution name, so a repeat start is a no-op."""
    return f"{deployment}-r{revision}"


def _run_loop(platform: Platform, deployment: str, loop: str) -> str:
    """Start the reconcile loop the record names as its owner (a no-op if it was started)."""
    started = platform.pipelines.start(platform.settings.rollout_state_machine_arn, loop, {"deployment": deployment})
    return started.execution_arn


# -- one reconcile step ---------------------------------------------------------------------------


def reconcile_step(platform: Platform, request: StepRequest) -> StepOutcome:
    """Measure, observe, decide, act, record. Safe to repeat and to crash anywhere in between.

    `request.loop` is the calling loop's name; a loop the record no longer names (a rollback or a
    new rollout started a newer one) stops here, so one deployment is stepped by one loop at a time."""
    deployment, loop = request.deployment, request.loop
    record = _get(platform, deployment)
    spec, status = record.spec, record.status
    if loop and record.loop and loop != record.loop:
        _run_loop(platform, deployment, record.loop)  # the owner runs even if its starter crashed
        return StepOutcome(
            deployment, status.phase, status.active_version, f"superseded by loop {record.loop}", True, 0
        )
    now = platform.clock()
    observed = _observe(platform, spec, status)
    decision = reconcile(spec, status, observed, now)
    _apply(platform, spec, decision)
    if decision.changed:
        try:
            platform.deployments.put(replace(record, status=decision.status), expected_revision=status.revision)
        except PreconditionFailed as error:  # an alert or a user recorded an intent meanwhile
            raise TransientError(f"{deployment} changed during the step; stepping again", retry_after=1) from error
    requeue = decision.requeue_after
    return StepOutcome(
        deployment,
        decision.status.phase,
        decision.status.active_version,
        decision.status.reason,
        done=requeue is None,
        requeue_after=round(max(MIN_REQUEUE_SECONDS, requeue)) if requeue is not None else 0,
    )


def _observe(platform: Platform, spec: RolloutSpec, status: Any) -> Observed:
    versions = {
        spec.version,
        spec.previous_version,
        status.active_version,
        status.preview_version,
        status.stable_version,
    } - {None}
    seen = {}
    for version in versions:
        try:
            readiness = platform.serving.deployment_readiness(deployment_name(spec.deployment, version))
        except NotFound:
            continue
        seen[version] = VersionObservation(desired=readiness.desired, ready=readiness.ready)
    canary = spec.is_canary or status.canary_weight > 0
    return Observed(
        deployments=seen,
        active_selector=_selected(platform, spec.deployment),
        preview_selector=_selected(platform, preview_service_name(spec.deployment)),
        analysis=_measure(platform, spec, status),
        preview_traffic=platform.serving.job_exists(preview_traffic_job_name(spec.deployment, spec.version)),
        canary_selector=_selected(platform, canary_service_name(spec.deployment)) if canary else None,
        canary_weight=canary_weight_of(platform.serving.ingress_weights(spec.deployment), spec.deployment)
        if canary
        else 0,
    )


def _selected(platform: Platform, service: str) -> int | None:
    try:
        value = platform.serving.service_selector(service).get(LABEL_VERSION)
    except NotFound:
        return None
    return int(value) if value and value.isdigit() else None


def _measure(platform: Platform, spec: RolloutSpec, status: Any) -> AnalysisSample | None:
    request = analysis_request(spec, status)
    if request is None:
        return None
    values: dict[str, float | None] = {}
    baseline: dict[str, float | None] = {}
    try:
        # A canary's and stable's values are read one after the other, on the same [1m] window.
        for name, query in request.queries.items():
            values[name] = platform.metrics.value(query)
        for name, query in request.baseline_queries.items():
            baseline[name] = platform.metrics.value(query)
    except TransientError as error:  # unreachable: inconclusive, never a blind promotion
        return AnalysisSample(request.stage, request.version, dict.fromkeys(request.queries), error=error.message)
    return AnalysisSample(request.stage, request.version, values, baseline=baseline)


# -- acting ---------------------------------------------------------------------------------------


def _apply(platform: Platform, spec: RolloutSpec, decision: Decision) -> None:
    config = ManifestConfig.from_settings(platform.settings)
    # Cluster actions first, registry writes after: a rollback's switch does not wait for its
    # history entry. A rollback's switch goes before everything: it does not wait for the scale-up
    # of its warm target (a process start); the domain only switches a rollback to a version with a
    # ready replica (a first rollout's Services, by contrast, must follow their Deployments).
    # Safe in any order: the status is written last, so a step that crashes in between is repeated
    # whole, and history entries are de-duplicated by key.
    records = (RecordEvent, MarkLastKnownGood)
    rolling_back = decision.status.phase is Phase.ROLLING_BACK

    def rank(action: object) -> int:
        if isinstance(action, records):
            return 2
        traffic = isinstance(action, (SwitchSelector, SetTrafficWeight))  # a rollback moves traffic first
        return 0 if rolling_back and traffic else 1

    ordered = sorted(decision.actions, key=rank)  # stable
    seen_kinds: dict[str, int] = {}
    for action in ordered:
        if isinstance(action, EnsureDeployment):
            _ensure(platform, spec, action.version, action.replicas, config)
        elif isinstance(action, ScaleDeployment):
            platform.serving.scale_deployment(deployment_name(spec.deployment, action.version), action.replicas)
        elif isinstance(action, SwitchSelector):
            _switch(platform, spec, action, config)
        elif isinstance(action, SetTrafficWeight):
            # The ALB's weighted forward; locally the active Service's router splits by the same Ingress.
            weights = ingress_weights(spec.deployment, action.weight)
            platform.serving.apply(render_ingress(spec.deployment, config, weights))
        elif isinstance(action, RecordEvent):
            # A canary step can record two events of a kind in one decision (two steps done at once).
            nth = seen_kinds[action.kind.value] = seen_kinds.get(action.kind.value, -1) + 1
            _history(
                platform,
                spec,
                action.kind.value,
                action.message,
                "rollout",
                dedupe_key=f"{spec.deployment}#{decision.status.revision}#{action.kind.value}"
                + (f"#{nth}" if nth else ""),
                details=_intent_details(decision),
            )
        elif isinstance(action, MarkLastKnownGood):
            _mark_last_known_good(platform, spec, action.version)
        elif isinstance(action, StartPreviewTraffic):
            traffic = PreviewTraffic(
                spec.deployment, spec.model, action.version, action.rate, action.seconds, action.payload_uri
            )
            platform.serving.apply(render_preview_traffic_network_policy(spec.deployment, config))
            platform.serving.apply(render_preview_traffic_job(traffic, config))
            _history(
                platform,
                spec,
                "preview-traffic-started",
                f"load test of v{action.version} through the preview Service: {action.rate:g} req/s "
                f"for at most {action.seconds:.0f}s with {action.payload_uri}",
                "rollout",
                dedupe_key=f"{spec.deployment}#{decision.status.revision}#preview-traffic-started",
            )
        elif isinstance(action, StopPreviewTraffic):
            platform.serving.delete("Job", preview_traffic_job_name(spec.deployment, action.version))


def _ensure(platform: Platform, spec: RolloutSpec, version: int, replicas: int, config: ManifestConfig) -> None:
    """Create the version's Deployment, or scale it up to `replicas` when it wants fewer. Pods that are
    not ready are the cluster's to restart (a kubelet; LocalServing's own restarts here): writing the
    same count again changes nothing."""
    name = deployment_name(spec.deployment, version)
    try:
        readiness = platform.serving.deployment_readiness(name)
    except NotFound:
        registered = platform.registry.get_version(spec.model, version)
        serving = ServingVersion(
            deployment=spec.deployment,
            model_name=spec.model,
            version=version,
            model_uri=registered.lineage.artifact_uri.rsplit("/", 1)[0] + "/",
            model_sha256=registered.lineage.artifact_sha256,
            replicas=replicas,
            min_replicas=replicas,
            max_replicas=max(replicas, 10),
        )
        # The Deployment last: its existence is what says "created" above, so a crash between two
        # applies never leaves a version without its PDB or HPA for good.
        for manifest in sorted(render_version(serving, config), key=lambda m: m["kind"] == "Deployment"):
            platform.serving.apply(manifest)
        return
    if readiness.desired < replicas:
        platform.serving.scale_deployment(name, replicas)


def _switch(platform: Platform, spec: RolloutSpec, action: SwitchSelector, config: ManifestConfig) -> None:
    preview, canary = action.service is ServiceRole.PREVIEW, action.service is ServiceRole.CANARY
    service = {
        ServiceRole.PREVIEW: preview_service_name(spec.deployment),
        ServiceRole.CANARY: canary_service_name(spec.deployment),
    }.get(action.service, spec.deployment)
    try:
        platform.serving.switch_service_selector(service, version_selector(spec.deployment, action.version))
    except NotFound:  # first rollout (first canary): the Service is created pointing at the version
        platform.serving.apply(render_service(spec.deployment, action.version, config, preview=preview, canary=canary))
        platform.serving.apply(render_network_policy(spec.deployment, config))
    if action.service is ServiceRole.ACTIVE:
        # The ALB routes to the active Service. Applied at every switch (it is idempotent), so a
        # deployment made before the Ingress was applied gets it at its next rollout or rollback.
        platform.serving.apply(render_ingress(spec.deployment, config))


def _mark_last_known_good(platform: Platform, spec: RolloutSpec, version: int) -> None:
    now = platform.clock()
    aliases = platform.registry.aliases(spec.model)
    current = aliases.get(Alias.PRODUCTION.value)
    reason = f"last-known-good of deployment {spec.deployment}"
    if current is not None and current != version:
        platform.registry.set_alias(spec.model, Alias.PREVIOUS, current, actor="rollout", reason=reason, now=now)
    platform.registry.set_alias(
        spec.model,
        Alias.PRODUCTION,
        version,
        actor="rollout",
        reason=reason,
        now=now,
        details={"deployment": spec.deployment},
    )
    registered = platform.registry.get_version(spec.model, version)
    if registered.status in (VersionStatus.APPROVED, VersionStatus.RETIRED):
        platform.registry.set_status(
            spec.model, version, VersionStatus.DEPLOYED, actor="rollout", reason=reason, now=now
        )


def _intent_details(decision: Decision) -> dict[str, Any]:
    intent = decision.status.intent
    return {"deployment": decision.status.deployment, "phase": decision.status.phase.value} | (
        {"intent": intent.to_dict()} if intent else {}
    )


def _history(
    platform: Platform,
    spec: RolloutSpec,
    action: str,
    reason: str,
    actor: str,
    *,
    dedupe_key: str = "",
    details: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    entry = HistoryEntry(
        model_name=spec.model,
        at=iso(at or platform.clock()),
        actor=actor,
        action=action,
        reason=reason,
        version=spec.version,
        details={"deployment": spec.deployment, **(details or {})},
    )
    platform.registry.record(entry, dedupe_key=dedupe_key)


# -- rollbacks and alerts -------------------------------------------------------------------------


def rollback(platform: Platform, command: DeploymentCommand) -> RolloutStatus:
    """`POST /deployments/{name}/rollback`: back to last-known-good, with a reason."""
    return _record_user_intent(platform, command.deployment, f"{command.actor}: {command.reason}")


def abort(platform: Platform, command: DeploymentCommand) -> RolloutStatus:
    """`POST /deployments/{name}/abort`: end a canary in progress; its weight returns to 0 at once and
    it scales down (the same rollback intent an alert or a failed analysis records)."""
    record = _get(platform, command.deployment)
    status = record.status
    in_canary = status.phase is Phase.CANARY or (status.phase is Phase.PAUSED and status.paused_from is Phase.CANARY)
    if not record.spec.is_canary or not in_canary or status.intent is not None:
        raise Conflict(
            f"{command.deployment} has no canary in progress to abort ({status.phase.value}"
            + (f", v{status.target_version} by blue-green" if not record.spec.is_canary else "")
            + "); use rollback to return to last-known-good",
            field="deployment",
        )
    return _record_user_intent(platform, command.deployment, f"canary aborted by {command.actor}: {command.reason}")


def _record_user_intent(platform: Platform, deployment: str, reason: str) -> RolloutStatus:
    """A user's rollback intent (a rollback, an abort), recorded for the loop to act on."""
    intent = RollbackIntent(deployment, IntentSource.USER, f"user-{uuid.uuid4().hex}", reason, platform.clock())
    return _record_intent(platform, intent)


def set_strategy(platform: Platform, change: StrategyChange) -> DeploymentRecord:
    """`PUT /deployments/{name}/strategy`: the strategy of the deployment's next rollouts."""
    for _ in range(5):
        record = _get(platform, change.deployment)
        strategy = change.strategy.canary
        no_stable = record.status.stable_version is None and record.status.active_version is None
        if strategy is not None and no_stable:
            raise InvalidInput(f"{change.deployment} has no stable version to compare a canary with", field="strategy")
        status = replace(record.status, revision=record.status.revision + 1)
        updated = replace(record, status=status, strategy=strategy)
        try:
            platform.deployments.put(updated, expected_revision=record.status.revision)
        except PreconditionFailed:
            continue
        how = f"canary ({strategy.describe()})" if strategy else "blue-green"
        _history(platform, record.spec, "strategy-set", f"{change.actor}: next rollouts by {how}", change.actor)
        return updated
    raise TransientError(f"{change.deployment} kept changing; try again", retry_after=2)


def promote(platform: Platform, command: DeploymentCommand) -> RolloutStatus:
    """`POST /deployments/{name}/promote`: past a paused or running analysis (a canary's remaining steps),
    by hand, with a reason."""
    deployment, actor, reason = command.deployment, command.actor, command.reason
    promotion = ManualPromotion(deployment, f"user-{uuid.uuid4().hex}", actor, reason, platform.clock())
    for _ in range(5):
        record = _get(platform, deployment)
        status = request_promotion(record.status, promotion)
        try:
            platform.deployments.put(
                replace(record, status=status, loop=loop_name(deployment, status.revision)),
                expected_revision=record.status.revision,
            )
        except PreconditionFailed:
            continue
        _history(
            platform,
            record.spec,
            "promotion-requested",
            f"{actor}: {reason}",
            actor,
            details={"promotion": promotion.to_dict(), "phase": record.status.phase.value},
        )
        _run_loop(platform, deployment, loop_name(deployment, status.revision))
        return status
    raise TransientError(f"{deployment} kept changing; try the promotion again", retry_after=2)


def handle_alerts(platform: Platform, payloads: list[AlertPayload]) -> AlertsHandled:
    """Alertmanager deliveries → rollback intents, at most one per alert firing (duplicates are no-ops)."""
    alerts = [alert for payload in payloads for alert in payload.alerts]
    names = {alert.deployment for alert in alerts if alert.deployment}
    records = {name: record for name in names if (record := platform.deployments.get(name)) is not None}
    handled = {key for record in records.values() for key in record.handled_alerts}
    decisions = decide_alert_actions(
        alerts,
        {name: record.policy for name, record in records.items()},
        {name: record.status for name, record in records.items()},
        handled,
        now=platform.clock(),
    )
    acted = []
    for intent in decisions.intents:
        try:
            _record_intent(platform, intent, records.get(intent.deployment))
            acted.append(AlertRollback(intent.deployment, intent.key, reason=intent.reason))
        except Conflict as error:  # e.g. already rolling back for another alert
            acted.append(AlertRollback(intent.deployment, intent.key, ignored=error.message))
    return AlertsHandled(len(alerts), tuple(acted), tuple(decisions.ignored))


def _record_intent(
    platform: Platform, intent: RollbackIntent, read: DeploymentRecord | None = None, attempts: int = 5
) -> RolloutStatus:
    """Record the intent (a conditional write), start the loop it names, then write its history entry.

    `read` is the record the caller has just read (an alert's handler reads it to decide), used for
    the first attempt; a conflicting write meanwhile re-reads it. The history entry follows the
    loop's start, so nothing but the one write delays the rollback; it keeps the time the intent was
    received. A crash after the write leaves the intent and its loop's name in the record (the
    record is the state; a running loop hands over to the loop it names), after the start also the
    loop running; the history entry is the audit of what the record already holds."""
    received = platform.clock()
    record = read
    for _ in range(attempts):
        record = record if record is not None else _get(platform, intent.deployment)
        status = request_rollback(record.status, intent)
        if status is record.status:
            return status  # the same intent was recorded before
        loop = loop_name(intent.deployment, status.revision)
        try:
            platform.deployments.put(
                replace(record, status=status, handled_alerts=record.handled_alerts + (intent.key,), loop=loop),
                expected_revision=record.status.revision,
            )
        except PreconditionFailed:
            record = None
            continue
        _run_loop(platform, intent.deployment, loop)
        entry, key = rollback_requested_entry(record.spec, intent, at=received)
        platform.registry.record(entry, dedupe_key=key)
        return status
    raise TransientError(f"{intent.deployment} kept changing; try the rollback again", retry_after=2)


def rollback_requested_entry(
    spec: RolloutSpec, intent: RollbackIntent, at: datetime | None = None
) -> tuple[HistoryEntry, str]:
    """The history entry of a recorded rollback intent, at the time it was received (`at`, else the
    intent's time), and its dedupe key: the loop sweeper writes it when the process that recorded
    the intent died before it did, and a second write is a no-op."""
    entry = HistoryEntry(
        model_name=spec.model,
        at=iso(at or intent.requested_at),
        actor=intent.source.value,
        action="rollback-requested",
        reason=intent.reason,
        version=spec.version,
        details={"deployment": spec.deployment, "intent": intent.to_dict()},
    )
    return entry, f"{spec.deployment}#rollback-requested#{intent.key}"


@dataclass(frozen=True)
class DeploymentView:
    """`GET /deployments/{name}`: the record, its history, and a canary's progress."""

    record: DeploymentRecord
    history: tuple[HistoryEntry, ...]
    canary: CanaryProgress | None
    autoscaling: dict[str, Any] | None  # the active version's HPA beside its VPA recommendation


def describe(platform: Platform, deployment: str) -> DeploymentView:
    """`GET /deployments/{name}`: active and preview versions, phase, last analysis, a canary's weight,
    step and time to the next, history."""
    record = _get(platform, deployment)
    history = tuple(
        entry for entry in platform.registry.history(record.spec.model) if entry.details.get("deployment") == deployment
    )
    canary = canary_progress(record.spec, record.status, platform.clock())
    return DeploymentView(record, history, canary, _autoscaling(platform, record))


def _autoscaling(platform: Platform, record: DeploymentRecord) -> dict[str, Any] | None:
    """The active version's HPA beside its VPA recommendation; None when the cluster cannot say."""
    active = record.status.active_version
    if not active:
        return None
    try:
        return {"version": active, **platform.serving.autoscaling(deployment_name(record.spec.deployment, active))}
    except ControlError:
        return None


def list_deployments(platform: Platform) -> list[str]:
    return platform.deployments.names()


def _get(platform: Platform, deployment: str) -> DeploymentRecord:
    check_deployment_name(deployment)
    record = platform.deployments.get(deployment)
    if record is None:
        raise NotFound(f"no deployment named {deployment!r}", field="deployment")
    return record


def start_from_pipeline(platform: Platform, request: PipelineRollout) -> PipelineRolloutStarted:
    """The training pipeline's StartRollout step: the gate passed and the request asked to deploy."""
    actor = f"pipeline:{request.run_id}"
    platform.registry.set_status(
        request.model,
        request.version,
        VersionStatus.APPROVED,
        actor=actor,
        reason="passed the evaluation gate; auto-deploy requested",
        now=platform.clock(),
    )
    try:
        started = start(platform, request.deployment, RolloutRequest(request.model, request.version), actor)
    except AlreadyServing as error:
        return PipelineRolloutStarted(request.deployment, skipped=error.message)
    return PipelineRolloutStarted(request.deployment, execution_arn=started.execution_arn)
