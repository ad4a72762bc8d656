"""What a plan's cluster software will do, judged offline from chart contracts.

A plan shows what we ask for; these checks say what Kubernetes then does with it. Each helm
release is read through its chart contract (the chart's defaults, merged with the values the
release sets, as Helm merges them) and judged against the nodes the plan makes (managed node
groups and Karpenter NodePools: their labels, taints and instance types) and the namespaces it
makes (their Pod Security level):

- scheduling: every workload lands on some node (a DaemonSet nowhere is a device plugin that
  never advertises a GPU); a DaemonSet pinned to an accelerator lands on every node of it;
- admission: each workload's pods pass the Pod Security level their namespace enforces;
- ordering: each release waits for the system nodes and CoreDNS, and for the namespace it
  installs into when the plan makes it;
- reachability: by the plan's NetworkPolicies, pods holding AWS roles reach the Pod Identity
  agent, DNS and HTTPS; a team namespace's pods reach each other; the callers a namespace
  declares reach it; and every namespace holding role bindings exists.

Resources are read in the shape `pulumi stack export` and AnalyzeStack share (type, URN, the
resource's properties, its dependencies), so the pack's stack rules and the tests run the same
checks. Standard library only.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from mlops_guardrails.charts import (
    POD_SECURITY_ORDER,
    ChartContract,
    PodSecurityLevel,
    Requirement,
    Toleration,
    Workload,
    contract,
)
from mlops_guardrails.vocabulary import (
    ACCELERATOR_LABEL,
    ACCELERATOR_RESOURCES,
    EFA_LABEL,
    EFA_RESOURCE,
    EKS_TAINT_EFFECTS,
    INGRESS_ANNOTATION,
    POD_IDENTITY_AGENT_CIDR,
    POD_IDENTITY_AGENT_PORT,
    POOL_LABEL,
    SYSTEM_POOL,
    TEAM_LABEL,
    Taint,
)

RELEASE: Final = "kubernetes:helm.sh/v3:Release"
NODE_GROUP: Final = "aws:eks/nodeGroup:NodeGroup"
NODE_POOL: Final = "kubernetes:karpenter.sh/v1:NodePool"
EC2_NODE_CLASS: Final = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
NAMESPACE: Final = "kubernetes:core/v1:Namespace"
ADDON: Final = "aws:eks/addon:Addon"
NETWORK_POLICY: Final = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
POD_IDENTITY_ASSOCIATION: Final = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
ROLE: Final = "aws:iam/role:Role"
BUILT_IN_NAMESPACES: Final = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
ANYWHERE: Final = "0.0.0.0/0"
ENFORCE_LABEL: Final = "pod-security.kubernetes.io/enforce"
# Kubernetes' Pod Security admission enforces `privileged` where a namespace sets no level, and
# EKS runs it with that default configuration (EKS best practices guide, "Pod Security").
UNLABELLED_LEVEL: Final[PodSecurityLevel] = "privileged"
INSTANCE_TYPE_LABEL: Final = "node.kubernetes.io/instance-type"
KUBERNETES_TAINT_EFFECTS: Final = {eks: k8s for k8s, eks in EKS_TAINT_EFFECTS.items()}
AFFINITY_TERMS: Final = (
    "nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
)


@dataclass(frozen=True)
class PlanResource:
    type: str
    urn: str
    props: Mapping[str, Any]
    dependencies: Sequence[str] = ()


@dataclass(frozen=True)
class NodeKind:
    """The nodes of one pool that share an instance type."""

    pool: str
    labels: Mapping[str, str]
    taints: tuple[Taint, ...]
    urn: str = ""
    """The node group or NodePool that brings them up."""

    @property
    def resources(self) -> frozenset[str]:
        """The extended resources these nodes have, once their device plugins run."""
        vendor = self.labels.get(ACCELERATOR_LABEL, "")
        accelerators = {resource for v, resource in ACCELERATOR_RESOURCES.items() if v == vendor}
        efa = {EFA_RESOURCE} if self.labels.get(EFA_LABEL) == "true" else set()
        return frozenset(accelerators | efa)


@dataclass(frozen=True)
class Placement:
    """Where a release's workload may run, once the release's values are merged in."""

    node_selector: Mapping[str, str]
    node_affinity: tuple[tuple[Requirement, ...], ...]
    tolerations: tuple[Toleration, ...]


def from_export(resources: Iterable[Mapping[str, Any]]) -> list[PlanResource]:
    """A stack export's resources, read as AnalyzeStack hands them over (their outputs)."""
    return [
        PlanResource(
            r["type"], r["urn"], r.get("outputs") or {}, tuple(r.get("dependencies") or ())
        )
        for r in resources
    ]


# Nodes ----------------------------------------------------------------------------------------


def node_kinds(resources: Sequence[PlanResource]) -> list[NodeKind]:
    """Every kind of node the plan can bring up, with the labels the kubelet and the pool set."""
    kinds = []
    for resource in resources:
        if resource.type == NODE_GROUP:
            labels = dict(resource.props.get("labels") or {})
            labels["eks.amazonaws.com/nodegroup"] = str(resource.props.get("nodeGroupName", ""))
            taints = tuple(
                Taint(
                    t.get("key", ""),
                    t.get("value") or "",
                    KUBERNETES_TAINT_EFFECTS.get(t.get("effect", ""), ""),
                )
                for t in resource.props.get("taints") or []
            )
            types = list(resource.props.get("instanceTypes") or [])
        elif resource.type == NODE_POOL:
            template = (resource.props.get("spec") or {}).get("template") or {}
            labels = dict((template.get("metadata") or {}).get("labels") or {})
            labels["karpenter.sh/nodepool"] = str(
                (resource.props.get("metadata") or {}).get("name", "")
            )
            spec = template.get("spec") or {}
            taints = tuple(
                Taint(t.get("key", ""), t.get("value") or "", t.get("effect", ""))
                for t in spec.get("taints") or []
            )
            types = [
                value
                for requirement in spec.get("requirements") or []
                if requirement.get("key") == INSTANCE_TYPE_LABEL
                for value in requirement.get("values") or []
            ]
        else:
            continue
        pool = labels.get(POOL_LABEL, resource.urn.rsplit("::", 1)[-1])
        for instance_type in types or [""]:
            kinds.append(
                NodeKind(
                    pool=pool,
                    labels={
                        **labels,
                        "kubernetes.io/os": "linux",
                        INSTANCE_TYPE_LABEL: instance_type,
                    },
                    taints=taints,
                    urn=resource.urn,
                )
            )
    return kinds


def tolerates(tolerations: Iterable[Toleration], taint: Taint) -> bool:
    return any(
        (t.key is None or t.key == taint.key)
        and (t.operator == "Exists" or t.value == taint.value)
        and (t.effect is None or t.effect == taint.effect)
        for t in tolerations
    )


def satisfies(labels: Mapping[str, str], requirement: Requirement) -> bool:
    present = requirement.key in labels
    value = labels.get(requirement.key)
    return {
        "In": present and value in requirement.values,
        "NotIn": not present or value not in requirement.values,
        "Exists": present,
        "DoesNotExist": not present,
    }[requirement.operator]


def lands_on(placement: Placement, node: NodeKind) -> bool:
    selected = all(node.labels.get(k) == v for k, v in placement.node_selector.items())
    affine = not placement.node_affinity or any(
        all(satisfies(node.labels, r) for r in term) for term in placement.node_affinity
    )
    hard_taints = [t for t in node.taints if t.effect in ("NoSchedule", "NoExecute")]
    return selected and affine and all(tolerates(placement.tolerations, t) for t in hard_taints)


# Releases -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    resource: PlanResource
    contract: ChartContract
    values: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.resource.props.get("name") or self.contract.chart)

    @property
    def namespace(self) -> str:
        return str(self.resource.props.get("namespace") or "default")

    def workloads(self) -> Iterator[Workload]:
        """The workloads these values render."""
        for workload in self.contract.workloads:
            if workload.enabled_by is None:
                yield workload
                continue
            enabled = _lookup(self.values, workload.enabled_by)
            if enabled is True or (enabled is None and workload.enabled_by_default):
                yield workload

    def placement(self, workload: Workload) -> Placement:
        """The workload's scheduling: the chart's defaults with the release's values over them,
        as Helm coalesces values: maps merge key by key, a null deletes a key, any other value
        (a list included) replaces the default."""
        scope = _lookup(self.values, workload.values_path) if workload.values_path else self.values
        scope = scope if isinstance(scope, Mapping) else {}
        selector = {**workload.node_selector, **(scope.get("nodeSelector") or {})}
        selector = {k: v for k, v in selector.items() if v is not None}
        affinity = workload.node_affinity
        if "affinity" in scope:
            found, terms = _present(scope, "affinity." + AFFINITY_TERMS)
            if found:
                affinity = _affinity_terms(terms)
            elif _cleared(scope, "affinity." + AFFINITY_TERMS):
                affinity = ()
        tolerations = workload.tolerations
        if "tolerations" in scope:
            tolerations = tuple(_toleration(t) for t in scope.get("tolerations") or [])
        return Placement(selector, affinity, (*tolerations, *workload.fixed_tolerations))

    def workload_namespace(self, workload: Workload) -> str:
        return workload.namespace or self.namespace


def releases(resources: Sequence[PlanResource]) -> list[Release]:
    """The plan's helm releases of charts with a contract."""
    found = []
    for resource in resources:
        if resource.type != RELEASE:
            continue
        chart, version = (
            str(resource.props.get("chart", "")),
            str(resource.props.get("version", "")),
        )
        known = contract(chart.rsplit("/", 1)[-1], version)
        if known is not None:
            found.append(Release(resource, known, resource.props.get("values") or {}))
    return found


def _lookup(values: Mapping[str, Any], path: str) -> Any:
    current: Any = values
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def _present(values: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """Whether the values set `path` to something other than null, and to what."""
    value = _lookup(values, path)
    return value is not None, value


def _cleared(values: Mapping[str, Any], path: str) -> bool:
    """Whether a null at some level of `path` deletes the chart's default there."""
    current: Any = values
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return False
        if current[part] is None:
            return True
        current = current[part]
    return False


def _affinity_terms(terms: Any) -> tuple[tuple[Requirement, ...], ...]:
    return tuple(
        tuple(
            Requirement(e.get("key", ""), e.get("operator", "In"), tuple(e.get("values") or ()))
            for e in term.get("matchExpressions") or []
        )
        for term in terms or []
        if isinstance(term, Mapping)
    )


def _toleration(entry: Mapping[str, Any]) -> Toleration:
    return Toleration(
        key=entry.get("key"),
        operator=entry.get("operator", "Equal"),
        value=entry.get("value") or "",
        effect=entry.get("effect"),
    )


# The checks -----------------------------------------------------------------------------------


def scheduling_problems(resources: Sequence[PlanResource]) -> Iterator[tuple[str, str]]:
    """(message, release URN) for each workload that lands on no node; that misses nodes with the
    resource it exists for (a device plugin missing a GPU pool leaves its GPUs unadvertised); or
    that has no business on accelerator nodes yet lands there."""
    nodes = node_kinds(resources)
    found = releases(resources)
    plugins = {w.node_resource for r in found for w in r.workloads() if w.role == "device-plugin"}
    for resource_name in sorted({name for node in nodes for name in node.resources} - plugins):
        bare = [node for node in nodes if resource_name in node.resources]
        yield (
            f"pools {sorted(_pools(bare))} have {resource_name} but no release in the plan "
            "installs its device plugin: it is never advertised, and pods requesting it stay "
            "Pending",
            bare[0].urn,
        )
    for release in found:
        for workload in release.workloads():
            placement = release.placement(workload)
            landed = [node for node in nodes if lands_on(placement, node)]
            where = f"{release.name} {workload.role} ({workload.kind})"
            if not landed:
                if not workload.optional:
                    yield (
                        f"{where} lands on no node of the plan: {describe(placement)}",
                        release.resource.urn,
                    )
            elif workload.node_resource is not None:
                missed = _pools(n for n in nodes if workload.node_resource in n.resources) - _pools(
                    landed
                )
                if missed:
                    yield (
                        f"{where} misses the {workload.node_resource} nodes of pools "
                        f"{sorted(missed)}: {describe(placement)}",
                        release.resource.urn,
                    )
            else:
                intruded = _pools(n for n in landed if n.resources)
                if intruded:
                    yield (
                        f"{where} lands on accelerator pools {sorted(intruded)}: it takes room "
                        "their jobs need and keeps them from scaling down; " + describe(placement),
                        release.resource.urn,
                    )


def _pools(nodes: Iterable[NodeKind]) -> set[str]:
    """Pools and instance types: a chart may select by instance type, and miss some of a pool."""
    return {f"{node.pool} {node.labels.get(INSTANCE_TYPE_LABEL, '')}".strip() for node in nodes}


def admission_problems(resources: Sequence[PlanResource]) -> Iterator[tuple[str, str]]:
    """(message, release URN) for each workload its namespace's Pod Security level refuses."""
    levels = namespace_levels(resources)
    for release in releases(resources):
        for workload in release.workloads():
            namespace = release.workload_namespace(workload)
            level = levels.get(namespace, UNLABELLED_LEVEL)
            if POD_SECURITY_ORDER.index(workload.pod_security) > POD_SECURITY_ORDER.index(level):
                yield (
                    f"{release.name} {workload.role} needs Pod Security '{workload.pod_security}' "
                    f"({workload.why}); namespace {namespace} enforces '{level}', so its pods "
                    "are refused",
                    release.resource.urn,
                )


def ordering_problems(resources: Sequence[PlanResource]) -> Iterator[tuple[str, str]]:
    """(message, release URN) for each release that may install before what its pods need: a
    release with pods on the system nodes waits for the system node group and CoreDNS; every
    release waits for the namespace it installs into when the plan makes it. Waiting through
    another resource counts."""
    system_groups = {
        r.urn
        for r in resources
        if r.type == NODE_GROUP and (r.props.get("labels") or {}).get(POOL_LABEL) == SYSTEM_POOL
    }
    coredns = {
        r.urn for r in resources if r.type == ADDON and r.props.get("addonName") == "coredns"
    }
    namespaces = {
        str((r.props.get("metadata") or {}).get("name")): r.urn
        for r in resources
        if r.type == NAMESPACE
    }
    system_nodes = [n for n in node_kinds(resources) if n.labels.get(POOL_LABEL) == SYSTEM_POOL]
    waits_for = _transitive_dependencies(resources)
    for release in releases(resources):
        waits = waits_for[release.resource.urn]
        needs: dict[str, set[str]] = {}
        if any(
            lands_on(release.placement(workload), node)
            for workload in release.workloads()
            for node in system_nodes
        ):
            needs = {"the system node group": system_groups, "CoreDNS": coredns}
        if release.namespace in namespaces:
            needs[f"namespace {release.namespace}"] = {namespaces[release.namespace]}
        missing = [what for what, urns in needs.items() if urns and not urns & waits]
        if missing:
            yield (
                f"{release.name} does not wait for {', '.join(missing)}: its install can time "
                "out or fail before they exist",
                release.resource.urn,
            )


def _transitive_dependencies(resources: Sequence[PlanResource]) -> dict[str, set[str]]:
    """Every URN each resource waits for, directly or through others (a plan lists resources
    after what they depend on)."""
    closure: dict[str, set[str]] = {}
    for resource in resources:
        waits: set[str] = set()
        for dependency in resource.dependencies:
            waits.add(dependency)
            waits |= closure.get(dependency, set())
        closure[resource.urn] = waits
    return closure


# Reachability ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """One end of a connection: a pod (namespace and labels) or addresses outside the cluster."""

    namespace: str | None = None
    labels: Mapping[str, str] | None = None
    network: str | None = None

    def __str__(self) -> str:
        if self.network is not None:
            return self.network
        selected = ",".join(f"{k}={v}" for k, v in sorted((self.labels or {}).items()))
        return f"pods {selected + ' ' if selected else ''}in {self.namespace}"


@dataclass(frozen=True)
class Policies:
    """The plan's NetworkPolicies by namespace, and the labels of its namespaces."""

    by_namespace: Mapping[str, Sequence[Mapping[str, Any]]]
    namespace_labels: Mapping[str, Mapping[str, str]]

    @classmethod
    def of(cls, resources: Sequence[PlanResource]) -> Policies:
        by_namespace: dict[str, list[Mapping[str, Any]]] = {}
        labels: dict[str, dict[str, str]] = {}
        for resource in resources:
            metadata = resource.props.get("metadata") or {}
            if resource.type == NETWORK_POLICY:
                namespace = str(metadata.get("namespace") or "default")
                by_namespace.setdefault(namespace, []).append(resource.props.get("spec") or {})
            elif resource.type == NAMESPACE:
                name = str(metadata.get("name"))
                labels[name] = dict(metadata.get("labels") or {})
        return cls(by_namespace, labels)

    def labels_of(self, namespace: str) -> dict[str, str]:
        # The API server labels every namespace with its name.
        return {
            **self.namespace_labels.get(namespace, {}),
            "kubernetes.io/metadata.name": namespace,
        }

    def allows(self, source: Peer, destination: Peer, protocol: str, port: int | None) -> bool:
        """Whether the connection passes both ends' policies; port None is every port."""
        return self._direction(source, destination, "Egress", protocol, port) and self._direction(
            destination, source, "Ingress", protocol, port
        )

    def _direction(
        self, pod: Peer, other: Peer, direction: str, protocol: str, port: int | None
    ) -> bool:
        if pod.namespace is None:
            return True  # addresses outside the cluster have no policies here
        selecting = [
            spec
            for spec in self.by_namespace.get(pod.namespace, ())
            if _selects(spec.get("podSelector"), pod.labels or {})
            and direction in _policy_types(spec)
        ]
        if not selecting:
            return True
        key, peers = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        return any(
            _ports_match(rule.get("ports"), protocol, port)
            and (
                not rule.get(peers)
                or any(self._peer_matches(p, pod.namespace, other) for p in rule[peers])
            )
            for spec in selecting
            for rule in spec.get(key) or []
        )

    def _peer_matches(self, peer: Mapping[str, Any], namespace: str, other: Peer) -> bool:
        block = peer.get("ipBlock")
        if block is not None:
            return other.network is not None and _within(
                other.network, block.get("cidr", ""), block.get("except") or ()
            )
        if other.namespace is None:
            return False
        if "namespaceSelector" in peer:
            in_namespace = _selects(peer["namespaceSelector"], self.labels_of(other.namespace))
        else:
            in_namespace = other.namespace == namespace
        return in_namespace and _selects(peer.get("podSelector"), other.labels or {})


def _policy_types(spec: Mapping[str, Any]) -> list[str]:
    # Kubernetes' default: Ingress always, Egress when the policy has egress rules.
    return list(spec.get("policyTypes") or ["Ingress", *(["Egress"] if spec.get("egress") else [])])


def _selects(selector: Any, labels: Mapping[str, str]) -> bool:
    """A label selector; absent or empty selects everything."""
    if not isinstance(selector, Mapping):
        return True
    matched = all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())
    return matched and all(
        satisfies(
            labels,
            Requirement(e.get("key", ""), e.get("operator", "In"), tuple(e.get("values") or ())),
        )
        for e in selector.get("matchExpressions") or []
    )


def _ports_match(ports: Any, protocol: str, port: int | None) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        allowed = entry.get("port")
        if allowed is None:
            return True
        if port is None or not isinstance(allowed, int | float):
            continue  # every port needs a rule without one; named ports are not resolved
        if int(allowed) <= port <= int(entry.get("endPort") or allowed):
            return True
    return False


def _within(network: str, cidr: str, excepted: Iterable[str]) -> bool:
    try:
        inner, outer = ipaddress.ip_network(network), ipaddress.ip_network(cidr)
        holes = [ipaddress.ip_network(e) for e in excepted]
    except ValueError:
        return False
    return (
        inner.version == outer.version
        and inner.subnet_of(outer)  # type: ignore[arg-type]
        and not any(inner.overlaps(hole) for hole in holes)
    )


def role_namespaces(resources: Sequence[PlanResource]) -> dict[str, set[str]]:
    """Namespaces whose pods hold AWS roles, with how: `pod-identity` (an association) or
    `irsa` (a role trusting the cluster's OIDC provider for a service account there)."""
    found: dict[str, set[str]] = {}
    for resource in resources:
        if resource.type == POD_IDENTITY_ASSOCIATION:
            found.setdefault(str(resource.props.get("namespace")), set()).add("pod-identity")
        elif resource.type == ROLE:
            for namespace in _irsa_namespaces(resource.props.get("assumeRolePolicy")):
                found.setdefault(namespace, set()).add("irsa")
    return found


def _irsa_namespaces(document: Any) -> Iterator[str]:
    try:
        policy = json.loads(document) if isinstance(document, str) else document
    except ValueError:
        return
    for statement in (policy or {}).get("Statement") or []:
        for conditions in (statement.get("Condition") or {}).values():
            for key, subject in conditions.items():
                subjects = subject if isinstance(subject, list) else [subject]
                for value in subjects:
                    if key.endswith(":sub") and str(value).startswith("system:serviceaccount:"):
                        yield str(value).split(":")[2]


DNS: Final = Peer("kube-system", {"k8s-app": "kube-dns"})


def reachability_problems(resources: Sequence[PlanResource]) -> Iterator[tuple[str, str]]:
    """(message, namespace URN) for each connection the plan's NetworkPolicies cut that its pods
    need: pods holding AWS roles to DNS, HTTPS anywhere (STS and the AWS APIs, through
    endpoints or NAT) and, bound through Pod Identity, its agent; a team namespace's pods to each
    other; each declared caller to the namespace that declares it."""
    policies = Policies.of(resources)
    namespaces = {
        str((r.props.get("metadata") or {}).get("name")): r
        for r in resources
        if r.type == NAMESPACE
    }
    for namespace, bindings in sorted(role_namespaces(resources).items()):
        if namespace not in namespaces:
            continue
        pod = Peer(namespace, {})
        needs = [
            (DNS, "UDP", 53, "DNS"),
            (Peer(network=ANYWHERE), "TCP", 443, "AWS APIs over HTTPS"),
        ]
        if "pod-identity" in bindings:
            agent = Peer(network=POD_IDENTITY_AGENT_CIDR)
            needs.append((agent, "TCP", POD_IDENTITY_AGENT_PORT, "the Pod Identity agent"))
        for destination, protocol, port, what in needs:
            if not policies.allows(pod, destination, protocol, port):
                yield (
                    f"pods in {namespace} hold AWS roles ({', '.join(sorted(bindings))}) but "
                    f"cannot reach {what} ({destination} {protocol}/{port})",
                    namespaces[namespace].urn,
                )
    for namespace, resource in sorted(namespaces.items()):
        metadata = resource.props.get("metadata") or {}
        if TEAM_LABEL in (metadata.get("labels") or {}):
            pod = Peer(namespace, {})
            if not policies.allows(pod, pod, "TCP", None):
                yield (
                    f"pods in {namespace} cannot reach each other on every port: a distributed "
                    "job's workers could not connect",
                    resource.urn,
                )
        for rule in _declared_ingress(metadata):
            for source in [
                *(Peer(n, {}) for n in rule.get("fromNamespaces") or []),
                *(Peer(network=c) for c in rule.get("fromCidrs") or []),
            ]:
                for port in rule.get("ports") or []:
                    if not policies.allows(source, Peer(namespace, {}), "TCP", int(port)):
                        yield (
                            f"{namespace} declares callers {source} on TCP/{port}, but the "
                            "network policies refuse them",
                            resource.urn,
                        )


def _declared_ingress(metadata: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = (metadata.get("annotations") or {}).get(INGRESS_ANNOTATION)
    try:
        declared = json.loads(raw) if isinstance(raw, str) else []
    except ValueError:
        return []
    return [rule for rule in declared if isinstance(rule, Mapping)]


def namespace_problems(
    resources: Sequence[PlanResource], external: Collection[str] = ()
) -> Iterator[tuple[str, str]]:
    """(message, binding URN) for each role binding into a namespace nobody makes: not the
    plan, not Kubernetes itself, not another project (`external`)."""
    made = (
        {str((r.props.get("metadata") or {}).get("name")) for r in resources if r.type == NAMESPACE}
        | BUILT_IN_NAMESPACES
        | set(external)
    )
    for resource in resources:
        namespaces = (
            [str(resource.props.get("namespace"))]
            if resource.type == POD_IDENTITY_ASSOCIATION
            else list(_irsa_namespaces(resource.props.get("assumeRolePolicy")))
            if resource.type == ROLE
            else []
        )
        for namespace in namespaces:
            if namespace not in made:
                yield (
                    f"a role is bound to service accounts in namespace {namespace}, which "
                    "nothing creates: its workload has nowhere to run",
                    resource.urn,
                )


def namespace_levels(resources: Sequence[PlanResource]) -> dict[str, PodSecurityLevel]:
    levels: dict[str, PodSecurityLevel] = {}
    for resource in resources:
        if resource.type != NAMESPACE:
            continue
        metadata = resource.props.get("metadata") or {}
        level = (metadata.get("labels") or {}).get(ENFORCE_LABEL, UNLABELLED_LEVEL)
        if level in POD_SECURITY_ORDER:
            levels[str(metadata.get("name"))] = level
    return levels


def describe(placement: Placement) -> str:
    parts = []
    if placement.node_selector:
        parts.append(f"nodeSelector {dict(placement.node_selector)}")
    if placement.node_affinity:
        terms = [
            " and ".join(
                f"{r.key} {r.operator} {list(r.values)}" if r.values else f"{r.key} {r.operator}"
                for r in term
            )
            for term in placement.node_affinity
        ]
        parts.append("required affinity " + " or ".join(f"({t})" for t in terms))
    if placement.tolerations:
        tolerated = sorted({t.key or "every taint" for t in placement.tolerations})
        parts.append(f"tolerates {', '.join(tolerated)}")
    return "; ".join(parts) or "no constraints"
