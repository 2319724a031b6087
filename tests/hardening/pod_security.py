"""The Pod Security Standards' `restricted` profile, version v1.31, as a small table of checks.

From kubernetes.io/docs/concepts/security/pod-security-standards: `restricted` is every `baseline`
control plus the restricted ones. Each control is one function of the pod's metadata and spec that
returns what breaks it; `violations()` runs them all. Containers means containers,
initContainers and ephemeralContainers alike. (Windows pods, exempt from some restricted controls,
are not the platform's concern: it runs Linux pods only.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

Spec = Mapping[str, Any]
Check = Callable[[Spec, Spec], list[str]]

CONTAINER_FIELDS = ("containers", "initContainers", "ephemeralContainers")
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
        "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
    }
)  # fmt: skip
RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)  # fmt: skip
RESTRICTED_VOLUME_TYPES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
)
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


def containers(spec: Spec) -> Iterator[tuple[str, Spec]]:
    for field in CONTAINER_FIELDS:
        for container in spec.get(field) or []:
            yield f"{field}[{container.get('name', '?')}]", container


def _pod_sc(spec: Spec) -> Spec:
    return spec.get("securityContext") or {}


def _sc(container: Spec) -> Spec:
    return container.get("securityContext") or {}


def _contexts(spec: Spec) -> Iterator[tuple[str, Spec]]:
    """The pod's securityContext and each container's, with where they are."""
    yield "spec.securityContext", _pod_sc(spec)
    for where, container in containers(spec):
        yield f"{where}.securityContext", _sc(container)


# -- baseline ---------------------------------------------------------------------------------------


def host_process(meta: Spec, spec: Spec) -> list[str]:
    return [
        f"{where}.windowsOptions.hostProcess is true"
        for where, sc in _contexts(spec)
        if (sc.get("windowsOptions") or {}).get("hostProcess")
    ]


def host_namespaces(meta: Spec, spec: Spec) -> list[str]:
    return [f"spec.{field} is true" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)]


def privileged(meta: Spec, spec: Spec) -> list[str]:
    return [f"{where} is privileged" for where, c in containers(spec) if _sc(c).get("privileged")]


def capabilities_baseline(meta: Spec, spec: Spec) -> list[str]:
    return [
        f"{where} adds {cap}"
        for where, c in containers(spec)
        for cap in (_sc(c).get("capabilities") or {}).get("add") or []
        if cap not in BASELINE_CAPABILITIES
    ]


def host_path_volumes(meta: Spec, spec: Spec) -> list[str]:
    return [f"volume {v.get('name')} is a hostPath" for v in spec.get("volumes") or [] if "hostPath" in v]


def host_ports(meta: Spec, spec: Spec) -> list[str]:
    return [
        f"{where} uses hostPort {port['hostPort']}"
        for where, c in containers(spec)
        for port in c.get("ports") or []
        if port.get("hostPort")
    ]


def app_armor(meta: Spec, spec: Spec) -> list[str]:
    found = [
        f"{where}.appArmorProfile.type is {profile['type']}"
        for where, sc in _contexts(spec)
        if (profile := sc.get("appArmorProfile")) and profile.get("type") not in ("RuntimeDefault", "Localhost")
    ]
    for key, value in (meta.get("annotations") or {}).items():
        if key.startswith(APPARMOR_ANNOTATION) and not (value == "runtime/default" or value.startswith("localhost/")):
            found.append(f"annotation {key} is {value}")
    return found


def se_linux(meta: Spec, spec: Spec) -> list[str]:
    found = []
    for where, sc in _contexts(spec):
        options = sc.get("seLinuxOptions") or {}
        if options.get("type", "") not in SELINUX_TYPES:
            found.append(f"{where}.seLinuxOptions.type is {options['type']}")
        found += [f"{where}.seLinuxOptions.{field} is set" for field in ("user", "role") if options.get(field)]
    return found


def proc_mount(meta: Spec, spec: Spec) -> list[str]:
    return [
        f"{where} has procMount {_sc(c)['procMount']}"
        for where, c in containers(spec)
        if _sc(c).get("procMount", "Default") != "Default"
    ]


def seccomp_baseline(meta: Spec, spec: Spec) -> list[str]:
    return [
        f"{where}.seccompProfile.type is Unconfined"
        for where, sc in _contexts(spec)
        if (sc.get("seccompProfile") or {}).get("type") == "Unconfined"
    ]


def sysctls(meta: Spec, spec: Spec) -> list[str]:
    return [
        f"sysctl {s.get('name')} is not in the safe set"
        for s in _pod_sc(spec).get("sysctls") or []
        if s.get("name") not in SAFE_SYSCTLS
    ]


# -- restricted -------------------------------------------------------------------------------------


def volume_types(meta: Spec, spec: Spec) -> list[str]:
    found = []
    for volume in spec.get("volumes") or []:
        sources = set(volume) - {"name"}
        if not sources or not sources <= RESTRICTED_VOLUME_TYPES:
            found.append(f"volume {volume.get('name')} is of type {', '.join(sorted(sources)) or 'none'}")
    return found


def privilege_escalation(meta: Spec, spec: Spec) -> list[str]:
    return [
        f"{where} does not set allowPrivilegeEscalation: false"
        for where, c in containers(spec)
        if _sc(c).get("allowPrivilegeEscalation") is not False
    ]


def run_as_non_root(meta: Spec, spec: Spec) -> list[str]:
    pod = _pod_sc(spec).get("runAsNonRoot")
    found = ["spec.securityContext.runAsNonRoot is false"] if pod is False else []
    for where, c in containers(spec):
        value = _sc(c).get("runAsNonRoot")
        if value is False or (value is None and pod is not True):
            found.append(f"{where} may run as root (runAsNonRoot is {value}, the pod's is {pod})")
    return found


def run_as_user(meta: Spec, spec: Spec) -> list[str]:
    return [f"{where}.runAsUser is 0" for where, sc in _contexts(spec) if sc.get("runAsUser") == 0]


def seccomp_restricted(meta: Spec, spec: Spec) -> list[str]:
    allowed = ("RuntimeDefault", "Localhost")
    pod = (_pod_sc(spec).get("seccompProfile") or {}).get("type")
    found = [f"spec.securityContext.seccompProfile.type is {pod}"] if pod is not None and pod not in allowed else []
    for where, c in containers(spec):
        value = (_sc(c).get("seccompProfile") or {}).get("type")
        if (value is not None and value not in allowed) or (value is None and pod not in allowed):
            found.append(f"{where} has no RuntimeDefault or Localhost seccomp profile (its own {value}, pod {pod})")
    return found


def capabilities_restricted(meta: Spec, spec: Spec) -> list[str]:
    found = []
    for where, c in containers(spec):
        caps = _sc(c).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            found.append(f"{where} does not drop ALL capabilities")
        found += [f"{where} adds {cap}" for cap in caps.get("add") or [] if cap not in RESTRICTED_CAPABILITIES]
    return found


CONTROLS: dict[str, tuple[str, Check]] = {
    "HostProcess": ("baseline", host_process),
    "Host Namespaces": ("baseline", host_namespaces),
    "Privileged Containers": ("baseline", privileged),
    "Capabilities (baseline)": ("baseline", capabilities_baseline),
    "HostPath Volumes": ("baseline", host_path_volumes),
    "Host Ports": ("baseline", host_ports),
    "AppArmor": ("baseline", app_armor),
    "SELinux": ("baseline", se_linux),
    "/proc Mount Type": ("baseline", proc_mount),
    "Seccomp (baseline)": ("baseline", seccomp_baseline),
    "Sysctls": ("baseline", sysctls),
    "Volume Types": ("restricted", volume_types),
    "Privilege Escalation": ("restricted", privilege_escalation),
    "Running as Non-root": ("restricted", run_as_non_root),
    "Running as Non-root user": ("restricted", run_as_user),
    "Seccomp (restricted)": ("restricted", seccomp_restricted),
    "Capabilities (restricted)": ("restricted", capabilities_restricted),
}


def violations(meta: Spec, spec: Spec, profile: str = "restricted") -> dict[str, list[str]]:
    """Control name → what breaks it, for every control of `profile` that the pod breaks."""
    levels = ("baseline",) if profile == "baseline" else ("baseline", "restricted")
    found = {name: check(meta, spec) for name, (level, check) in CONTROLS.items() if level in levels}
    return {name: problems for name, problems in found.items() if problems}


# -- where pods come from ----------------------------------------------------------------------------

TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "PodTemplate": ("template",),
}


def pod_templates(obj: Spec) -> Iterator[tuple[str, Spec]]:
    """(name, pod template {metadata, spec}) of the pods a built-in workload makes; none for other
    kinds (an MPIJob's pods are made by mpi-operator: see test_cluster_policies.operator_pods)."""
    kind, name = obj.get("kind"), f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    if kind == "Pod":
        yield name, {"metadata": obj.get("metadata") or {}, "spec": obj["spec"]}
    elif kind in TEMPLATE_PATHS:
        template: Any = obj
        for key in TEMPLATE_PATHS[kind]:
            template = template[key]
        yield name, template
