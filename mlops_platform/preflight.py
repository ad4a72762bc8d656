"""Preflight: what a first `pulumi up` needs of the live account, read before it starts.

Read-only calls only. Each check says what it found and, when it blocks a deploy, how to fix it;
a call the credentials may not make (or the region does not offer) leaves that check unchecked,
never a crash. What it checks:

- the service-linked roles the stack's key policies name or its capacity needs exist (owned by no
  stack: KMS refuses a key policy naming a role that does not exist yet);
- each EC2 vCPU quota group the GPU pools draw on (G and VT, P, Inf, Trn; on-demand and spot)
  has room for the pools at their maximum, beside what already runs (other stacks share it);
- every pool's instance types are offered in its zones;
- capacity reservations and blocks exist, for the pool's instance type, in its zone, and are
  active or about to be;
- EKS offers the configured Kubernetes version;
- the deployer role config names is one the policy pack allows cluster-wide admin;
- for a deploy runner, the GitHub connection it checks out through exists and is authorised,
  and the repository is not the checked-in example.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

from botocore.exceptions import ClientError

from infra.config import ExistingNetworkMode, GpuPoolConfig, PlatformConfig

ClientFactory = Callable[[str], Any]
Status = Literal["ok", "blocker", "unchecked"]
AUTOSCALING_ROLE: Final = "AWSServiceRoleForAutoScaling"
SPOT_ROLE: Final = "AWSServiceRoleForEC2Spot"
LOAD_BALANCING_ROLE: Final = "AWSServiceRoleForElasticLoadBalancing"
SERVICE_LINKED_ROLE_NEEDS: Final = {
    AUTOSCALING_ROLE: "missing: the EBS key's policy names it",
    SPOT_ROLE: "missing: spot capacity needs it",
    # Its controller may not create it (the workload boundary holds no IAM).
    LOAD_BALANCING_ROLE: "missing: the first ALB of a model service needs it",
}
EXAMPLE_OWNER: Final = "example-org/"
"""The owner in the checked-in stack files' repository, which every user must replace."""
# A GPU pool's instance family to the words EC2's vCPU quota names use for its group.
QUOTA_GROUPS: Final = {"g": "G and VT", "p": "P", "inf": "Inf", "trn": "Trn"}


@dataclass(frozen=True)
class CheckResult:
    check: str
    status: Status
    detail: str
    fix: str = ""


@dataclass
class Preflight:
    results: list[CheckResult] = field(default_factory=list)

    @property
    def blockers(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "blocker"]

    @property
    def unchecked(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "unchecked"]


class Checker:
    def __init__(
        self,
        client: ClientFactory,
        config: PlatformConfig,
        *,
        region: str,
        admin_patterns: list[str],
        now: datetime.datetime,
    ) -> None:
        self.client = client
        self.config = config
        self.region = region
        self.admin_patterns = admin_patterns
        self.now = now
        self.report = Preflight()

    def run(self) -> Preflight:
        self.service_linked_roles()
        zones = self.zones()
        types = self.instance_types()
        self.vcpu_quotas(types)
        if zones is not None:
            self.offerings(zones)
        self.reservations(zones)
        self.kubernetes_version()
        self.deployer()
        self.deploy_runner()
        return self.report

    def _add(self, check: str, status: Status, detail: str, fix: str = "") -> None:
        self.report.results.append(CheckResult(check, status, detail, fix))

    @contextmanager
    def _reading(self, check: str) -> Iterator[None]:
        try:
            yield
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            self._add(check, "unchecked", f"{code} on {error.operation_name}")
        except NotImplementedError as error:
            self._add(check, "unchecked", str(error))

    # Prerequisites ------------------------------------------------------------------------

    def service_linked_roles(self) -> None:
        needed = {AUTOSCALING_ROLE: "autoscaling.amazonaws.com"}
        if any(pool.capacity.type == "spot" for pool in self.config.gpu.pools.values()):
            needed[SPOT_ROLE] = "spot.amazonaws.com"
        if self.config.gpu.serves_models:
            needed[LOAD_BALANCING_ROLE] = "elasticloadbalancing.amazonaws.com"
        iam = self.client("iam")
        for role, service in needed.items():
            with self._reading(f"service-linked role {role}"):
                try:
                    iam.get_role(RoleName=role)
                except ClientError as error:
                    if error.response.get("Error", {}).get("Code") != "NoSuchEntity":
                        raise
                    self._add(
                        f"service-linked role {role}",
                        "blocker",
                        SERVICE_LINKED_ROLE_NEEDS[role],
                        f"aws iam create-service-linked-role --aws-service-name {service}",
                    )
                else:
                    self._add(f"service-linked role {role}", "ok", "exists")

    # Capacity -----------------------------------------------------------------------------

    def zones(self) -> list[str] | None:
        """The zone names the network uses, in the order pools' `zone` counts them."""
        network = self.config.network
        if isinstance(network, ExistingNetworkMode):
            return [subnet.zone for subnet in network.existing.private_subnets]
        with self._reading("availability zones"):
            found = self.client("ec2").describe_availability_zones(
                Filters=[
                    {"Name": "state", "Values": ["available"]},
                    {"Name": "opt-in-status", "Values": ["opt-in-not-required"]},
                ]
            )["AvailabilityZones"]
            return sorted(zone["ZoneName"] for zone in found)[: network.availability_zones]
        return None

    def instance_types(self) -> dict[str, int]:
        """vCPUs of every pool's instance types."""
        wanted = sorted({t for p in self.config.gpu.pools.values() for t in p.instance_types})
        if not wanted:
            return {}
        with self._reading("instance types"):
            described = self.client("ec2").describe_instance_types(InstanceTypes=wanted)
            return {
                t["InstanceType"]: t["VCpuInfo"]["DefaultVCpus"] for t in described["InstanceTypes"]
            }
        return {}

    def vcpu_quotas(self, vcpus: Mapping[str, int]) -> None:
        if not vcpus:
            return
        needed: dict[tuple[str, str], int] = {}
        candidates: dict[tuple[str, str], list[str]] = {}
        for pool in self.config.gpu.pools.values():
            market = "spot" if pool.capacity.type == "spot" else "on-demand"
            group = quota_group(pool.instance_types[0])
            largest = max(vcpus.get(t, 0) for t in pool.instance_types)
            needed[(group, market)] = needed.get((group, market), 0) + pool.max_nodes * largest
            candidates[(group, market)] = quota_names(pool.instance_types[0], market)
        with self._reading("EC2 vCPU quotas"):
            quotas = self._ec2_quotas()
            running = self._running_vcpus()
            for (group, market), want in sorted(needed.items()):
                names = candidates[(group, market)]
                name = next((n for n in names if n in quotas), names[0])
                check = f"vCPU quota {name!r}"
                if name not in quotas:
                    self._add(check, "unchecked", "not among the region's EC2 quotas")
                    continue
                used = running.get((group, market), 0)
                room = int(quotas[name]) - used
                detail = (
                    f"the pools need up to {want} vCPUs; quota {int(quotas[name])}, "
                    f"{used} in use (by this account's instances, other stacks' included)"
                )
                if want > room:
                    self._add(
                        check,
                        "blocker",
                        detail,
                        f"request at least {want + used} in Service Quotas (EC2, {name}), or "
                        "lower the pools' maxNodes",
                    )
                else:
                    self._add(check, "ok", detail)

    def _ec2_quotas(self) -> dict[str, float]:
        quotas: dict[str, float] = {}
        paginator = self.client("service-quotas").get_paginator("list_service_quotas")
        for page in paginator.paginate(ServiceCode="ec2"):
            for quota in page["Quotas"]:
                quotas[quota["QuotaName"]] = quota["Value"]
        return quotas

    def _running_vcpus(self) -> dict[tuple[str, str], int]:
        """vCPUs this account runs per quota group, counted as quotas count them: each
        instance type's default vCPUs."""
        counts: dict[tuple[str, str], int] = {}
        ec2 = self.client("ec2")
        filters = [{"Name": "instance-state-name", "Values": ["pending", "running"]}]
        for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    market = "spot" if instance.get("InstanceLifecycle") == "spot" else "on-demand"
                    key = (instance["InstanceType"], market)
                    counts[key] = counts.get(key, 0) + 1
        vcpus = {}
        if counts:
            described = ec2.describe_instance_types(InstanceTypes=sorted({t for t, _ in counts}))
            vcpus = {
                t["InstanceType"]: t["VCpuInfo"]["DefaultVCpus"] for t in described["InstanceTypes"]
            }
        running: dict[tuple[str, str], int] = {}
        for (instance_type, market), count in counts.items():
            group = (quota_group(instance_type), market)
            running[group] = running.get(group, 0) + count * vcpus.get(instance_type, 0)
        return running

    def offerings(self, zones: list[str]) -> None:
        ec2 = self.client("ec2")
        for name, pool in sorted(self.config.gpu.pools.items()):
            used = [zones[pool.zone - 1]] if pool.zone else zones
            with self._reading(f"pool {name}: instance types offered"):
                offered = {
                    (o["InstanceType"], o["Location"])
                    for o in ec2.describe_instance_type_offerings(
                        LocationType="availability-zone",
                        Filters=[{"Name": "instance-type", "Values": list(pool.instance_types)}],
                    )["InstanceTypeOfferings"]
                }
                missing = [
                    f"{t} in {z}"
                    for t in pool.instance_types
                    for z in used
                    if (t, z) not in offered
                ]
                everywhere_missing = [
                    t for t in pool.instance_types if all((t, z) not in offered for z in used)
                ]
                if everywhere_missing:
                    self._add(
                        f"pool {name}: instance types offered",
                        "blocker",
                        f"{', '.join(everywhere_missing)} offered in none of {', '.join(used)}",
                        "choose instance types EC2 offers in these zones, or other zones",
                    )
                elif missing:
                    self._add(
                        f"pool {name}: instance types offered",
                        "ok",
                        f"not offered: {', '.join(missing)}; nodes launch in the other zones",
                    )
                else:
                    self._add(f"pool {name}: instance types offered", "ok", "in every zone")

    def reservations(self, zones: list[str] | None) -> None:
        reserved = {
            name: pool
            for name, pool in sorted(self.config.gpu.pools.items())
            if pool.capacity.reservation_id
        }
        if not reserved:
            return
        ec2 = self.client("ec2")
        for name, pool in reserved.items():
            check = f"pool {name}: capacity {pool.capacity.reservation_id}"
            with self._reading(check):
                try:
                    [found] = ec2.describe_capacity_reservations(
                        CapacityReservationIds=[pool.capacity.reservation_id]
                    )["CapacityReservations"]
                except ClientError as error:
                    if "NotFound" not in error.response.get("Error", {}).get("Code", ""):
                        raise
                    self._add(check, "blocker", "does not exist in this account and region")
                    continue
                self._add(check, *reservation_problem(found, pool, zones, self.now))

    def kubernetes_version(self) -> None:
        version = self.config.eks.version
        check = f"Kubernetes {version} on EKS"
        with self._reading(check):
            found = self.client("eks").describe_cluster_versions(clusterVersions=[version])
            statuses = [v.get("versionStatus", "") for v in found.get("clusterVersions", [])]
            if not statuses:
                self._add(
                    check,
                    "blocker",
                    f"EKS does not offer {version} in {self.region}",
                    "set eks.version to one EKS offers here",
                )
            else:
                self._add(check, "ok", f"offered ({statuses[0]})")

    def deployer(self) -> None:
        eks = self.config.eks
        if not eks.deployer_is_cluster_admin:
            return
        check = "deployer role"
        name = eks.deployer_role_name.rsplit("/", 1)[-1]
        with self._reading(check):
            caller = self.client("sts").get_caller_identity()
            partition = caller["Arn"].split(":")[1]
            role = f"arn:{partition}:iam::{caller['Account']}:role/{eks.deployer_role_name}"
            if not any(fnmatch.fnmatchcase(role, p) for p in self.admin_patterns):
                self._add(
                    check,
                    "blocker",
                    f"{role} gets cluster-admin, but eks-cluster-admin-scoped does not allow it",
                    "rename eks.deployerRoleName to match allowedPrincipals, or add it there",
                )
                return
            try:
                trust = self.client("iam").get_role(RoleName=name)["Role"]
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "NoSuchEntity":
                    raise
                self._add(
                    check,
                    "blocker",
                    f"{role} does not exist: its access entry and the kubeconfig need it",
                    "create the role (trusted by CI and the people who deploy), or set "
                    "eks.deployerRoleName",
                )
                return
            running_as = caller["Arn"].split(":assumed-role/")[-1].split("/")[0]
            # The kubeconfig assumes the role even from a session of it, which IAM allows only
            # when the role's trust policy names the role itself.
            if running_as == name and role not in json.dumps(trust["AssumeRolePolicyDocument"]):
                self._add(
                    check,
                    "blocker",
                    f"this run is {role}, whose trust policy does not let it assume itself",
                    f"add {role} as a principal of its own trust policy",
                )
                return
            self._add(
                check, "ok", f"{role} exists and is an allowed admin; this run is {caller['Arn']}"
            )

    def deploy_runner(self) -> None:
        runner = self.config.eks.endpoint.deploy_runner
        if runner is None:
            return
        check = f"deploy runner: GitHub connection {runner.connection_name}"
        if runner.repository.startswith(EXAMPLE_OWNER):
            self._add(
                check,
                "blocker",
                f"eks.endpoint.deployRunner.repository is the example {runner.repository}: "
                "CodeBuild would check out a repository that is not yours",
                "set it to your repository (owner/name)",
            )
            return
        with self._reading(check):
            connections = self.client("codeconnections")
            found: list[dict[str, Any]] = []
            token: str | None = None
            while True:
                page = connections.list_connections(
                    ProviderTypeFilter="GitHub", **({"NextToken": token} if token else {})
                )
                found += page.get("Connections", [])
                token = page.get("NextToken")
                if not token:
                    break
            named = [c for c in found if c.get("ConnectionName") == runner.connection_name]
            if not named:
                self._add(
                    check,
                    "blocker",
                    f"no GitHub connection named {runner.connection_name} in {self.region}",
                    "create it in the console (Developer Tools > Settings > Connections) and "
                    f"install the AWS Connector app for {runner.repository}",
                )
                return
            status = named[0].get("ConnectionStatus", "")
            if status != "AVAILABLE":
                self._add(
                    check,
                    "blocker",
                    f"its status is {status}: the runner's project cannot be created until the "
                    "connection is authorised",
                    "finish the handshake in the console: Connections > "
                    f"{runner.connection_name} > Update pending connection",
                )
                return
            self._add(check, "ok", f"available, for {runner.repository}")


def quota_group(instance_type: str) -> str:
    """The vCPU quota group of an instance type: its family's leading letters."""
    letters = re.match(r"[a-z]+", instance_type)
    prefix = letters.group(0) if letters else ""
    if prefix in ("g", "vt"):
        return QUOTA_GROUPS["g"]
    return QUOTA_GROUPS.get(prefix, "Standard (A, C, D, H, I, M, R, T, Z)")


def quota_names(instance_type: str, market: str) -> list[str]:
    """EC2's vCPU quota names an instance type may draw on, most specific first (Service Quotas,
    service ec2; EC2 User Guide, "Spot Instance quotas": P spot requests are split into P5 and
    P4, P3 and P2 where the account has the split)."""
    group = quota_group(instance_type)
    if market == "on-demand":
        return [f"Running On-Demand {group} instances"]
    names = [f"All {group} Spot Instance Requests"]
    if group == "P":
        generation = "P5" if instance_type.startswith("p5") else "P4, P3 and P2"
        names.insert(0, f"All {generation} Spot Instance Requests")
    return names


def reservation_problem(
    found: Mapping[str, Any],
    pool: GpuPoolConfig,
    zones: list[str] | None,
    now: datetime.datetime,
) -> tuple[Status, str]:
    wanted_block = pool.capacity.type == "capacity-block"
    problems = []
    if found.get("InstanceType") not in pool.instance_types:
        problems.append(f"for {found.get('InstanceType')}, not {', '.join(pool.instance_types)}")
    if zones is not None and pool.zone and found.get("AvailabilityZone") != zones[pool.zone - 1]:
        problems.append(
            f"in {found.get('AvailabilityZone')}, the pool is in {zones[pool.zone - 1]}"
        )
    is_block = found.get("ReservationType") == "capacity-block"
    if wanted_block != is_block:
        problems.append("a capacity block" if is_block else "not a capacity block")
    state = found.get("State")
    # Still being set up is not refused: pending, assessing and delayed capacity may arrive.
    if state not in ("active", "scheduled", "payment-pending", "pending", "assessing", "delayed"):
        problems.append(f"its state is {state}")
    end = found.get("EndDate")
    if isinstance(end, datetime.datetime) and end <= now:
        problems.append(f"it ended {end:%Y-%m-%d %H:%M}")
    if problems:
        return "blocker", "; ".join(problems)
    return "ok", f"{state}, {found.get('InstanceType')} in {found.get('AvailabilityZone')}"


def preflight(
    client: ClientFactory,
    config: PlatformConfig,
    *,
    region: str,
    admin_patterns: list[str],
    now: datetime.datetime | None = None,
) -> Preflight:
    return Checker(
        client,
        config,
        region=region,
        admin_patterns=admin_patterns,
        now=now or datetime.datetime.now(datetime.UTC),
    ).run()


def render_preflight(report: Preflight, fmt: str, title: str) -> str:
    if fmt == "json":
        return (
            json.dumps({"title": title, "checks": [asdict(r) for r in report.results]}, indent=2)
            + "\n"
        )
    marks = {"ok": "ok       ", "blocker": "BLOCKER  ", "unchecked": "unchecked"}
    lines = [f"preflight of {title}"]
    for result in report.results:
        lines.append(f"  {marks[result.status]} {result.check}: {result.detail}")
        if result.fix:
            lines.append(f"            fix: {result.fix}")
    lines.append(
        f"{len(report.blockers)} blocker(s), {len(report.unchecked)} check(s) could not run, "
        f"{len(report.results)} checks"
    )
    return "\n".join(lines) + "\n"


def admin_patterns(policy_config: Mapping[str, Any]) -> list[str]:
    rule = policy_config.get("eks-cluster-admin-scoped")
    patterns = rule.get("allowedPrincipals", []) if isinstance(rule, Mapping) else []
    return [str(p) for p in patterns]
