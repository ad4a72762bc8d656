"""`mlops-platform diff` between two real git revisions of the project."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from mlops_guardrails.export import resource_state, urn, urn_name
from mlops_platform.cli import main
from mlops_platform.diff import (
    REPLACE_FACTS,
    Capacity,
    DiffError,
    PropertyChange,
    ResourceChange,
    RevisionRender,
    capacity,
    compare,
    document_diff,
    flatten,
    load_prices,
    policy_changes,
    render_report,
    replace_paths,
)
from mlops_platform.policy_check import Finding
from mlops_platform.project import PulumiProject
from mlops_platform.render_cache import CACHE_ENV, RenderCache
from mlops_platform.rendered import RenderedStack
from tests.conftest import REPO_ROOT
from tests.mlops_platform import test_engine


@pytest.fixture(scope="module")
def changed_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of HEAD whose prod stack file adds a GPU pool, changes a feature group's
    features (which replaces it), drops a repository, moves the VPC to another CIDR and renames
    a bucket key; and whose dev stack moves to eu-west-1, adds a bucket and turns on the
    cluster's deletion protection."""
    clone = tmp_path_factory.mktemp("repo") / "main"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
    stack_file = clone / "Pulumi.prod.yaml"
    text = stack_file.read_text()
    inference = "        inference:\n          purpose: inference\n"
    batch = (
        "        batch:\n          purpose: inference\n          instanceTypes: [g6.xlarge]\n"
        "          maxNodes: 4\n          maxGpus: 4\n"
    )
    text = text.replace(inference, batch + inference)
    text = text.replace(
        "            spend_30d: Fractional\n", "            spend_90d: Fractional\n"
    )
    text = text.replace(
        "    gpu:\n      pools:\n",
        "    network:\n      vpcCidr: 10.64.0.0/16\n    gpu:\n      pools:\n",
        1,
    )
    text = text.replace(
        "        experiments:\n          purpose: experiment tracking artifacts\n",
        "        experiments: null\n"
        "        experiment-runs:\n          purpose: experiment tracking artifacts\n",
    )
    text = text.replace("{bucket: experiments, access", "{bucket: experiment-runs, access")
    text = text.replace(
        "    eks:\n", "    experimentTracking:\n      bucket: experiment-runs\n    eks:\n", 1
    )
    text = text.replace("        serving-images: {}\n", "")
    text = text.replace("        repositories: {serving-images: pull}\n", "")
    stack_file.write_text(text)
    dev_file = clone / "Pulumi.dev.yaml"
    dev = dev_file.read_text().replace("  aws:region: us-east-1\n", "  aws:region: eu-west-1\n")
    dev = dev.replace(
        "    eks:\n      endpoint:\n",
        "    artifacts:\n      buckets:\n        scratch: {purpose: scratch space}\n"
        "    eks:\n      deletionProtection: true\n      endpoint:\n",
        1,
    )
    dev_file.write_text(dev)
    return clone


@pytest.fixture(scope="module")
def report(changed_clone: Path) -> str:
    return markdown_diff(changed_clone, "prod")


@pytest.fixture(scope="module")
def dev_report(changed_clone: Path) -> str:
    return markdown_diff(changed_clone, "dev")


def markdown_diff(clone: Path, stack: str) -> str:
    out = io.StringIO()
    # The repository's render cache: on a clean checkout (CI) HEAD's prod is already there,
    # rendered from the same sources, so only the changed working tree renders.
    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stdout(out),
    ):
        patch.setenv(CACHE_ENV, str(REPO_ROOT / ".cache" / "renders"))
        code = main(
            [
                "--project-dir",
                str(clone),
                "diff",
                "--stack",
                stack,
                "--base",
                "HEAD",
                "--format",
                "markdown",
            ]
        )
    assert code == 0
    return out.getvalue()


def entry(report: str, line: str) -> str:
    """The report's list item that starts with `line`, down to the next item."""
    return report.split(f"{line}\n", 1)[1].split("\n- ", 1)[0]


def test_a_stack_moved_to_another_region_replaces_every_regional_resource(
    dev_report: str,
) -> None:
    """pulumi-aws v7 fills each resource's `region` from its provider, and a new region
    replaces it; IAM is global. The cluster's replacement leaves its kubeconfig unknown, so
    the Kubernetes provider is replaced, and with it everything it manages."""
    first = dev_report.splitlines()[0]
    assert "to replace" in first and first.endswith(" 0 to delete")
    moved = '  - region: "us-east-1" -> "eu-west-1" (forces replacement)'
    for regional in (
        "aws:s3/bucket:Bucket::artifacts-models-bucket",
        "aws:kms/key:Key::artifacts-key",
        "aws:ec2/vpc:Vpc::network-vpc",
        "aws:eks/cluster:Cluster::eks-cluster",
    ):
        assert moved in entry(dev_report, f"- replace {regional}")
    assert "- update aws:iam/role:Role::workload-trainer-role\n" in dev_report
    # The program names the cluster: it is deleted before its successor exists, and its
    # add-ons, which name it, with it.
    assert "- aws:eks/cluster:Cluster::eks-cluster, deleted first\n" in dev_report
    assert (
        "- aws:eks/addon:Addon::eks-coredns, deleted first with "
        "aws:eks/cluster:Cluster::eks-cluster\n"
    ) in dev_report
    release = entry(
        dev_report, "- replace kubernetes:helm.sh/v3:Release::cluster-autoscaler-release"
    )
    assert (
        '  - provider: "urn:pulumi:dev::mlops-platform::pulumi:providers:kubernetes::eks' in release
    )


def test_the_cost_estimate_is_refused_for_a_region_without_prices(dev_report: str) -> None:
    assert "No cost estimate: the price table has us-east-1 prices only, not eu-west-1" in (
        dev_report
    )
    assert "Estimated monthly cost" not in dev_report


def test_the_policy_section_names_what_a_real_change_brings_and_fixes(dev_report: str) -> None:
    """The advisory count stays at 32: one new, one fixed, both named."""
    section = dev_report.split("Policy check of the change: ", 1)[1].split("Accelerator", 1)[0]
    assert section.startswith("0 mandatory, 32 advisory violations\n")
    assert (
        "- new [advisory] stateful-resources-protected on "
        "aws:s3/bucket:Bucket::artifacts-scratch-bucket: "
    ) in section
    assert (
        "- fixed [advisory] aws-deletion-protection on aws:eks/cluster:Cluster::eks-cluster: "
    ) in section


def test_a_bucket_added_to_the_map_keeps_the_default_buckets(dev_report: str) -> None:
    assert "- create aws:s3/bucket:Bucket::artifacts-scratch-bucket\n" in dev_report
    assert "- delete " not in dev_report


def test_the_report_counts_what_is_added_changed_and_removed(report: str) -> None:
    first = report.splitlines()[0]
    assert first.startswith("### Stack prod against HEAD: ")
    assert "16 to create" in first and "63 to replace" in first and first.endswith("11 to delete")


def test_a_replacement_or_delete_of_a_protected_resource_is_the_headline(report: str) -> None:
    """Pulumi refuses to delete a protected resource, a replacement included, so the preview
    fails: that comes right after the counts."""
    headline = report.split("\n\n")[1]
    assert headline.startswith("**The preview will fail:** 3 protected resources")
    assert "FeatureGroup::sagemaker-features-customer-activity: replace" in headline
    assert "Repository::registry-serving-images: delete" in headline
    assert "Bucket::artifacts-experiments-bucket: delete" in headline


def test_a_renamed_bucket_key_is_paired_with_the_alias_that_keeps_the_bucket(report: str) -> None:
    renames = report.split("**Probable renames**")[1].split("\n\n", maxsplit=1)[0]
    old = (
        "urn:pulumi:prod::mlops-platform::mlops:artifact_storage:ArtifactStorage$"
        "mlops:secure_bucket:SecureBucket$aws:s3/bucket:Bucket::artifacts-experiments-bucket"
    )
    assert (
        "- aws:s3/bucket:Bucket::artifacts-experiments-bucket -> "
        "aws:s3/bucket:Bucket::artifacts-experiment-runs-bucket: "
        # Pulumi names the bucket: an alias alone keeps it, auto-name and all.
        f'opts=pulumi.ResourceOptions(aliases=["{old}"])\n'
    ) in renames


def test_property_level_differences_are_listed(report: str) -> None:
    assert '"spend_30d" -> "spend_90d" (forces replacement)' in report
    created = report.split("- create aws:eks/nodeGroup:NodeGroup::gpu-batch-node-group\n")[1]
    assert '  - instanceTypes: ["g6.xlarge"]\n' in created


def test_gpu_capacity_and_cost_before_and_after(report: str) -> None:
    assert "Accelerator ceiling: 40 -> 44" in report
    assert "Estimated monthly cost" in report and "estimate: approximate AWS list prices" in report
    assert "Policy check of the change: 0 mandatory" in report


def test_the_comment_carries_the_component_map_with_the_change_marked(report: str) -> None:
    assert "<details><summary>Component map: added green" in report
    picture = report.split("```mermaid\n")[1].split("```", maxsplit=1)[0]
    assert '["gpu-batch<br/><small>GpuNodePool · 6 resources<br/><b>added</b>' in picture
    # One repository fewer: the registry stays, changed, counting what it keeps.
    assert '["registry<br/><small>ModelRegistry · 4 resources, 1 protected<br/><b>changed' in (
        picture
    )
    assert "SageMakerFeatureStore · 4 resources, 1 protected<br/><b>changed</b>" in picture
    # The renamed bucket key: its old bucket component is removed, the new one added.
    assert (
        '["artifacts-experiments<br/><small>SecureBucket · 8 resources, 1 protected<br/><b>removed'
        in (picture)
    )


def test_the_base_revision_is_rendered_once(
    report: str,
    changed_clone: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The report fixture rendered HEAD's prod; diffing against HEAD again needs no worktree."""

    def no_second_render(*_: object) -> None:
        raise AssertionError("the base was rendered again")

    monkeypatch.setattr(RevisionRender, "_start", no_second_render)
    monkeypatch.setenv(CACHE_ENV, str(REPO_ROOT / ".cache" / "renders"))
    args = ["--project-dir", str(changed_clone), "diff", "--stack", "prod", "--base", "HEAD"]
    capsys.readouterr()
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[0] == report.splitlines()[0].removeprefix("### ")


def test_a_stack_the_change_adds_has_an_empty_base(changed_clone: Path, tmp_path: Path) -> None:
    """So everything in it is to create; nothing is rendered for the base."""
    project = PulumiProject.load(changed_clone)
    with RevisionRender(project, "HEAD", ["sandbox"], RenderCache(tmp_path)) as base:
        assert base.missing == []
        assert base.result()["sandbox"].resources == []


def test_a_broken_working_tree_config_fails_before_the_base_renders(
    changed_clone: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_base(*_: object) -> None:
        raise AssertionError("the base started before the working tree was checked")

    monkeypatch.setattr(RevisionRender, "__init__", no_base)
    broken = changed_clone / "Pulumi.broken.yaml"
    broken.write_text(
        "config:\n  aws:region: us-east-1\n"
        "  mlops-platform:platform:\n    environment: production\n"
    )
    try:
        args = ["--project-dir", str(changed_clone), "diff", "--stack", "broken", "--base", "HEAD"]
        assert main(args) == 2
    finally:
        broken.unlink()
    assert "environment: Input should be 'dev', 'staging' or 'prod'" in capsys.readouterr().err


def test_a_base_revision_that_does_not_exist_is_a_clear_error(
    changed_clone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--project-dir", str(changed_clone), "diff", "--stack", "prod", "--base", "no-such-rev"]
    assert main(args) == 2
    assert "base revision 'no-such-rev' not found" in capsys.readouterr().err


def test_nested_properties_flatten_to_paths() -> None:
    assert dict(flatten({"a": {"b": 1}, "l": [{"c": 2}], "s": ["x", "y"]})) == {
        "a.b": 1,
        "l[0].c": 2,
        "s": ["x", "y"],
    }


def test_compare_ignores_unchanged_and_provider_resources() -> None:
    resource = {
        "urn": "urn:pulumi:s::p::aws:kms/key:Key::k",
        "type": "aws:kms/key:Key",
        "custom": True,
        "inputs": {"keyUsage": "ENCRYPT_DECRYPT"},
    }
    provider = {
        "urn": "urn:pulumi:s::p::pulumi:providers:aws::default",
        "type": "pulumi:providers:aws",
        "custom": True,
        "inputs": {},
    }
    assert compare([resource, provider], [resource]) == []
    [change] = compare([resource], [{**resource, "inputs": {"keyUsage": "SIGN_VERIFY"}}])
    assert change.replaces


KEY = "aws:kms/key:Key"


NO_CAPACITY = Capacity(0, 0, 0)


def text_report(
    changes: list[ResourceChange],
    before: Capacity = NO_CAPACITY,
    after: Capacity = NO_CAPACITY,
    prices: dict[str, Any] | None = None,
) -> str:
    """The text report of `changes`, with no policy news."""
    return render_report(
        stack="s",
        revision="main",
        changes=changes,
        before=before,
        after=after,
        policy_summary="0 mandatory, 0 advisory violations",
        prices=prices or load_prices(),
        markdown=False,
    )


def state(inputs: dict[str, Any], *, protect: bool = False) -> dict[str, Any]:
    return resource_state(
        urn=urn("s", "p", KEY, "k"),
        type=KEY,
        inputs=inputs,
        outputs=inputs,
        protect=protect,
        retain_on_delete=protect,
    )


ENCRYPT = {"keyUsage": "ENCRYPT_DECRYPT", "tags": {"owner": "ml"}}


@pytest.mark.parametrize(
    ("before", "after", "operation", "fails"),
    [
        # protect blocks delete and replace only: in-place updates go through.
        (
            state(ENCRYPT, protect=True),
            state({**ENCRYPT, "tags": {}}, protect=True),
            "update",
            False,
        ),
        (
            state(ENCRYPT, protect=True),
            state({"keyUsage": "SIGN_VERIFY"}, protect=True),
            "replace",
            True,
        ),
        # A replacement is refused only when both the old state and the new goal protect it.
        (state(ENCRYPT, protect=True), state({"keyUsage": "SIGN_VERIFY"}), "replace", False),
        (state(ENCRYPT), state({"keyUsage": "SIGN_VERIFY"}, protect=True), "replace", False),
        # And at the old state for a delete.
        (state(ENCRYPT, protect=True), None, "delete", True),
        (state(ENCRYPT), None, "delete", False),
    ],
    ids=[
        "update",
        "replace",
        "unprotect-and-replace",
        "protect-and-replace",
        "delete",
        "unprotected-delete",
    ],
)
def test_protect_blocks_what_the_engine_blocks(
    before: dict[str, Any], after: dict[str, Any] | None, operation: str, fails: bool
) -> None:
    [change] = compare([before], [after] if after else [])
    assert (change.operation, change.fails_preview) == (operation, fails)


def test_gaining_or_losing_protection_is_a_change_and_losing_it_is_flagged() -> None:
    protected, bare = state(ENCRYPT, protect=True), state(ENCRYPT)
    [lost] = compare([protected], [bare])
    [gained] = compare([bare], [protected])
    assert (lost.operation, lost.options) == (
        "same",
        {"protect": (True, False), "retainOnDelete": (True, False)},
    )
    assert gained.options == {"protect": (False, True), "retainOnDelete": (False, True)}
    assert lost.loses_protection and not gained.loses_protection
    report = text_report([lost])
    assert "Losing protection:\n- aws:kms/key:Key::k: protect true -> false" in report


def test_documents_in_strings_are_compared_line_by_line() -> None:
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject"}]}
    wider = {**policy, "Statement": [{"Effect": "Allow", "Action": "s3:*"}]}
    assert document_diff(json.dumps(policy), json.dumps(wider)) == [
        "@@ -3,3 +3,3 @@",
        "     {",
        '-      "Action": "s3:GetObject",',
        '+      "Action": "s3:*",',
        '       "Effect": "Allow"',
    ]
    rules = "groups:\n- name: gpu\n  rules: []\n"
    assert document_diff(rules, rules + "- name: neuron\n") == [
        "@@ -3 +3,2 @@",
        "   rules: []",
        "+- name: neuron",
    ]
    assert document_diff("plain", "text") is None


def test_the_price_table_is_dated_and_labelled_an_estimate() -> None:
    prices = load_prices()
    assert prices["date"] and "approximate" in prices["source"]
    assert all(price > 0 for price in prices["hourly"].values())


PRICES = {
    "eksClusterHourly": 0.10,
    "natGatewayHourly": 0.05,
    "hourly": {"g6.xlarge": 1.0, "g6.2xlarge": 1.5, "g6e.12xlarge": 8.0},
}


def test_a_node_group_costs_its_cheapest_type_at_min_and_max_size() -> None:
    group = {
        "type": "aws:eks/nodeGroup:NodeGroup",
        "inputs": {
            "instanceTypes": ["g6.2xlarge", "g6.xlarge"],
            "scalingConfig": {"minSize": 1, "maxSize": 3},
            "tags": {"mlops:accelerator-ceiling": "3"},
        },
    }
    fixed = [{"type": "aws:eks/cluster:Cluster"}, *[{"type": "aws:ec2/natGateway:NatGateway"}] * 2]
    # 730 hours: the cluster and two NAT gateways cost (0.10 + 2 * 0.05) * 730 = 146.
    assert capacity([group, *fixed], PRICES) == Capacity(3, 1 * 730 + 146, 3 * 730 + 146)


def test_a_karpenter_pool_scales_to_zero_and_costs_its_gpu_limit_at_the_cheapest_gpu() -> None:
    pool = {
        "type": "kubernetes:karpenter.sh/v1:NodePool",
        "inputs": {
            "spec": {
                "limits": {"nvidia.com/gpu": "8", "cpu": "1000"},
                "template": {
                    "spec": {
                        "requirements": [
                            {
                                "key": "node.kubernetes.io/instance-type",
                                "operator": "In",
                                "values": ["g6.2xlarge", "g6e.12xlarge"],
                            }
                        ]
                    }
                },
            }
        },
    }
    # Per GPU: g6.2xlarge 1.5 (one GPU), g6e.12xlarge 8.0 / 4 = 2.0; so 8 GPUs * 1.5 * 730.
    assert capacity([pool], PRICES) == Capacity(8, 0.0, 8 * 1.5 * 730)


def test_instance_types_without_a_price_are_named_not_guessed() -> None:
    group = {
        "type": "aws:eks/nodeGroup:NodeGroup",
        "inputs": {"instanceTypes": ["p5.48xlarge"], "scalingConfig": {"maxSize": 2}},
    }
    estimate = capacity([group], PRICES)
    assert estimate.unpriced == ("p5.48xlarge",) and estimate.monthly_ceiling == 0
    report = text_report([], after=estimate, prices={"source": "test", "date": "2026-11-01"})
    assert "Not in the price table, so not in the estimate: p5.48xlarge" in report


def test_every_type_the_stacks_create_has_recorded_replacement_rules_or_is_named_missing(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    """Replacements come from the providers' sources (replace_facts.json); a type the platform
    starts creating must be read there, or named as not yet read."""
    created = {
        r.type
        for plan in rendered_stacks.values()
        for r in plan.resources
        if r.custom and not r.type.startswith("pulumi:providers:")
    }
    missing = {t for t in created if replace_paths(t) is None}
    assert missing == set(REPLACE_FACTS["aws"]["notRecorded"]) & created


@pytest.mark.parametrize(
    ("type_token", "path", "replaces"),
    [
        ("aws:eks/nodeGroup:NodeGroup", "instanceTypes", True),
        ("aws:eks/nodeGroup:NodeGroup", "scalingConfig.maxSize", False),
        ("aws:eks/nodeGroup:NodeGroup", "launchTemplate.version", False),
        ("aws:eks/accessEntry:AccessEntry", "principalArn", True),
        ("aws:sagemaker/featureGroup:FeatureGroup", "featureDefinitions[3].featureName", True),
        ("kubernetes:helm.sh/v3:Release", "values.resources.limits.cpu", False),
        ("kubernetes:helm.sh/v3:Release", "name", True),
        ("kubernetes:storage.k8s.io/v1:StorageClass", "parameters.kmsKeyId", True),
        ("kubernetes:karpenter.sh/v1:NodePool", "spec.limits.nvidia.com/gpu", False),
        ("kubernetes:core/v1:Namespace", "metadata.name", True),
        ("aws:autoscaling/tag:Tag", "tag.value", False),
        ("aws:autoscaling/tag:Tag", "tag.key", True),
        ("aws:ec2/launchTemplate:LaunchTemplate", "imageId", False),
        # Every regional type moves by being made anew; IAM has no region.
        ("aws:eks/cluster:Cluster", "region", True),
        ("aws:iam/role:Role", "region", False),
    ],
)
def test_replacement_follows_the_providers_rules(
    type_token: str, path: str, replaces: bool
) -> None:
    [change] = compare(
        [state_of(type_token, {path: "before"})], [state_of(type_token, {path: "after"})]
    )
    assert change.properties[0].replaces is replaces
    assert change.operation == ("replace" if replaces else "update")


def state_of(type_token: str, flat: dict[str, Any]) -> dict[str, Any]:
    """A resource whose inputs hold `flat`'s dotted path (no lists)."""
    inputs: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, leaf = path.split(".")
        node = inputs
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return resource_state(
        urn=urn("s", "p", type_token, "r"), type=type_token, inputs=inputs, outputs=inputs
    )


def test_a_cidr_change_replaces_what_depends_on_the_replaced_network(report: str) -> None:
    """Offline ids never change, but in a real preview a replaced subnet's id is unknown: the
    node groups on it are replaced (subnetIds forces it) and the cluster updated in place."""
    for replaced in (
        "aws:ec2/vpc:Vpc::network-vpc",
        "aws:ec2/subnet:Subnet::network-private-az1",
        "aws:eks/nodeGroup:NodeGroup::eks-system-node-group",
        "aws:eks/nodeGroup:NodeGroup::gpu-inference-node-group",
    ):
        assert f"- replace {replaced}\n" in report
    cluster = report.split("- update aws:eks/cluster:Cluster::eks-cluster\n")[1].splitlines()[0]
    assert cluster.startswith("  - vpcConfig: ") and "<computed: its source is replaced>" in cluster


def test_moving_a_stack_to_another_region_replaces_every_regional_resource() -> None:
    """pulumi-aws v7 fills each resource's `region` from its provider and replaces on change;
    IAM has no region."""

    def stack(region: str) -> list[dict[str, Any]]:
        provider = resource_state(
            urn=urn("s", "p", "pulumi:providers:aws", "default_7_51_1"),
            type="pulumi:providers:aws",
            inputs={"region": region},
            outputs={"region": region},
        )
        reference = f"{provider['urn']}::id"
        bucket, role = (
            resource_state(
                urn=urn("s", "p", token, name),
                type=token,
                inputs={"tags": {}},
                outputs={},
                provider=reference,
            )
            for token, name in (("aws:s3/bucket:Bucket", "b"), ("aws:iam/role:Role", "r"))
        )
        return [provider, bucket, role]

    [moved] = compare(stack("us-east-1"), stack("eu-west-1"))
    assert (moved.type, moved.operation) == ("aws:s3/bucket:Bucket", "replace")
    assert moved.properties == [PropertyChange("region", "us-east-1", "eu-west-1", True)]
    report = text_report(
        [moved],
        before=capacity(stack("us-east-1"), load_prices()),
        after=capacity(stack("eu-west-1"), load_prices()),
    )
    assert "No cost estimate: the price table has us-east-1 prices only, not eu-west-1" in report


def test_the_policy_section_names_the_violations_the_change_brings_and_fixes() -> None:
    def finding(rule: str, name: str) -> Finding:
        bucket = urn("s", "p", "aws:s3/bucket:Bucket", name)
        return Finding(rule, "advisory", "high", bucket, "a message", "a fix")

    kept, fixed, new = finding("r1", "a"), finding("r2", "b"), finding("r3", "c")
    assert policy_changes([kept, fixed], [kept, new]) == [
        "- new [advisory] r3 on aws:s3/bucket:Bucket::c: a message",
        "- fixed [advisory] r2 on aws:s3/bucket:Bucket::b: a message",
    ]


BUCKET = "aws:s3/bucket:Bucket"
BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"


def bucket_pair(key: str, **extra: Any) -> list[dict[str, Any]]:
    """A bucket named after its key, and a public access block that names the bucket."""
    physical = f"artifacts-{key}-bucket-{len(key):07x}"
    return [
        resource_state(
            urn=urn("s", "p", BUCKET, f"artifacts-{key}-bucket"),
            type=BUCKET,
            inputs={"bucket": physical, "tags": {"owner": "ml"}, "forceDestroy": False},
            outputs={},
            **extra,
        ),
        resource_state(
            urn=urn("s", "p", BLOCK, f"artifacts-{key}-public-access-block"),
            type=BLOCK,
            inputs={"bucket": physical, "blockPublicAcls": True},
            outputs={},
        ),
    ]


def test_a_probable_rename_is_paired_with_the_alias_that_keeps_it() -> None:
    """The bucket's key changed: its own name, and the block's input naming it, are set aside,
    and the rest agrees; the block pairs once the bucket has."""
    changes = compare(bucket_pair("models"), bucket_pair("ml-models"))
    renames = {c.renamed: c.urn for c in changes if c.operation == "create"}
    assert renames == {
        urn("s", "p", BUCKET, "artifacts-models-bucket"): urn(
            "s", "p", BUCKET, "artifacts-ml-models-bucket"
        ),
        urn("s", "p", BLOCK, "artifacts-models-public-access-block"): urn(
            "s", "p", BLOCK, "artifacts-ml-models-public-access-block"
        ),
    }
    report = text_report(changes)
    old = urn("s", "p", BUCKET, "artifacts-models-bucket")
    # The program names the bucket from its key: the alias alone would still replace it.
    assert (
        f'opts=pulumi.ResourceOptions(aliases=["{old}"]), and bucket kept as before: a new '
        "value forces replacement\n"
    ) in report


def test_an_aliased_resource_is_the_same_resource_not_a_delete_and_a_create() -> None:
    """With the alias, Pulumi keeps the resource, its auto-name included."""
    old = urn("s", "p", BUCKET, "artifacts-models-bucket")
    before = bucket_pair("models")
    after = bucket_pair("ml-models", aliases=[old])
    after[0]["inputs"]["bucket"] = before[0]["inputs"]["bucket"]
    [kept, *block] = compare(before, after)
    assert (kept.alias_of, kept.operation, kept.properties) == (old, "same", [])
    assert sorted(c.operation for c in block) == ["create", "delete"]


def dependents_of(
    source_type: str, source: dict[str, Any], dependent_type: str, taken: dict[str, Any]
) -> list[dict[str, Any]]:
    """A resource (its inputs and an ARN) and, for each input in `taken`, one resource that
    takes it from the source (its property dependencies name the source), `protect` on."""
    source_urn = urn("s", "p", source_type, "source")
    service = source_type.split(":")[1].split("/", maxsplit=1)[0]
    outputs = {**source, "arn": f"arn:aws:{service}:us-east-1:1:source"}
    return [
        resource_state(urn=source_urn, type=source_type, inputs=source, outputs=outputs),
        *(
            resource_state(
                urn=urn("s", "p", dependent_type, key),
                type=dependent_type,
                inputs={key: value},
                outputs={},
                property_dependencies={key: [source_urn]},
                protect=True,
            )
            for key, value in taken.items()
        ),
    ]


def test_an_input_repeating_a_replaced_resources_own_input_stays_known() -> None:
    """A feature group replaced for its role keeps the name the program gives it (and, that
    name not being an auto-name, is created before the old one goes): a policy named after it
    shows no change in a preview; one taking its computed ARN does."""
    group, policy = "aws:sagemaker/featureGroup:FeatureGroup", "aws:iam/rolePolicy:RolePolicy"
    arn = "arn:aws:sagemaker:us-east-1:1:source"

    def stack(role: str) -> list[dict[str, Any]]:
        source = {"featureGroupName": "activity", "roleArn": role}
        return dependents_of(group, source, policy, {"name": "activity", "policy": arn})

    changes = compare(stack("role-a"), stack("role-b"))
    assert {urn_name(c.urn): c.operation for c in changes} == {
        "source": "replace",
        "policy": "update",
    }
    assert not any(c.fails_preview or c.delete_first for c in changes)


def test_a_delete_first_replacement_takes_its_dependents_and_fails_on_a_protected_one() -> None:
    """The program names the cluster, so the bridge deletes it before creating its successor,
    and the engine deletes first every dependent the provider would then replace, their inputs
    all unknown: an add-on naming the cluster goes too, and being protected, fails the
    preview ("unable to replace resource ... as part of replacing ...")."""
    cluster, addon = "aws:eks/cluster:Cluster", "aws:eks/addon:Addon"

    def stack(role: str) -> list[dict[str, Any]]:
        return dependents_of(cluster, {"name": "ml", "roleArn": role}, addon, {"clusterName": "ml"})

    by_type = {c.type: c for c in compare(stack("role-a"), stack("role-b"))}
    source, dependent = by_type[cluster], by_type[addon]
    assert (source.operation, source.delete_first, source.fails_preview) == ("replace", True, False)
    assert (dependent.operation, dependent.replaced_with) == ("replace", source.urn)
    assert dependent.fails_preview
    headline = text_report([source, dependent]).split("\n\n")[1]
    assert (
        "- aws:eks/addon:Addon::clusterName: replace, deleted first with "
        "aws:eks/cluster:Cluster::source"
    ) in headline


def test_a_retained_resource_deleted_or_replaced_is_said_to_stay_in_aws() -> None:
    [change] = compare([state(ENCRYPT, protect=True)], [])
    assert change.retained
    report = text_report([change])
    assert "- delete aws:kms/key:Key::k (retainOnDelete: the old one stays in AWS" in report


def test_the_stacks_region_is_its_default_providers_not_the_replicas() -> None:
    providers = [
        resource_state(
            urn=urn("prod", "p", "pulumi:providers:aws", name),
            type="pulumi:providers:aws",
            inputs={"region": region},
            outputs={},
        )
        for name, region in (("replica-region", "us-west-2"), ("default_7_51_1", "us-east-1"))
    ]
    assert capacity(providers, load_prices()).region == "us-east-1"


def test_a_component_renamed_with_one_alias_carries_its_children_over() -> None:
    """The engine gives each child an alias under each of its parent's, with the parent's old
    name in place of the new at the start of the child's: the idiomatic single alias on the
    component keeps every resource in it."""

    class Storage(pulumi.ComponentResource):
        def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
            super().__init__("mlops:test:Storage", name, None, opts)
            aws.s3.Bucket(f"{name}-bucket", opts=pulumi.ResourceOptions(parent=self))

    def program(name: str, aliases: list[pulumi.Alias]) -> RenderedStack:
        return test_engine.render_within(
            lambda: Storage(name, pulumi.ResourceOptions(aliases=aliases))
        )

    before = program("models", []).states()
    renamed = program("ml-models", [pulumi.Alias(name="models")]).states()
    [kept] = compare(before, renamed)
    assert (kept.operation, kept.alias_of) == (
        "same",
        urn("s", "p", "mlops:test:Storage$aws:s3/bucket:Bucket", "models-bucket"),
    )
    without_alias = compare(before, program("ml-models", []).states())
    assert sorted(c.operation for c in without_alias) == ["create", "delete"]


def edited(
    states: list[dict[str, Any]], changes: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """A copy of a stack's states with inputs changed, by resource name, and the outputs that
    repeat them, as a render of the change would have them."""
    copy: list[dict[str, Any]] = json.loads(json.dumps(states))
    for state in copy:
        changed = changes.get(urn_name(state["urn"]), {})
        state["inputs"].update(changed)
        state["outputs"].update({k: v for k, v in changed.items() if k in state["outputs"]})
    return copy


def test_replacing_an_access_entry_leaves_the_kubernetes_provider_and_its_objects_alone(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    """The kubeconfig waits on the deployer's access entry (its URN), but holds none of its
    computed outputs: in a preview it stays known, so the provider is not replaced."""
    states = rendered_stacks["dev"].states()
    other = {"principalArn": "arn:aws:iam::123456789012:role/another-deployer"}
    changes = compare(states, edited(states, {"eks-access-deployer": other}))
    assert {c.type for c in changes if c.replaces} == {
        "aws:eks/accessEntry:AccessEntry",
        "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
    }
    assert not [c for c in changes if c.type.startswith("kubernetes:")]


def test_a_cluster_replaced_on_the_way_takes_its_dependents_with_it_deleted_first(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    """A new path replaces the cluster's role; its new ARN replaces the cluster, which the
    program names, so it is deleted first, and its add-ons and node groups with it."""
    states = rendered_stacks["dev"].states()
    changes = {
        urn_name(c.urn): c
        for c in compare(states, edited(states, {"eks-cluster-role": {"path": "/eks/"}}))
    }
    cluster = changes["eks-cluster"]
    assert (cluster.operation, cluster.delete_first, cluster.replaced_with) == (
        "replace",
        True,
        None,
    )
    for dependent in ("eks-coredns", "eks-system-node-group", "eks-ebs-csi-association"):
        assert changes[dependent].replaced_with == cluster.urn, dependent


def provider_chain(cluster_inputs: dict[str, Any]) -> list[dict[str, Any]]:
    """A cluster, a Kubernetes provider whose kubeconfig holds its endpoint, and a named
    namespace the provider manages."""
    cluster_urn = urn("s", "p", "aws:eks/cluster:Cluster", "eks")
    provider_urn = urn("s", "p", "pulumi:providers:kubernetes", "k8s")
    endpoint = "https://0123456789ABCDEF.gr7.us-east-1.eks.amazonaws.com"
    return [
        resource_state(
            urn=cluster_urn,
            type="aws:eks/cluster:Cluster",
            inputs=cluster_inputs,
            outputs={**cluster_inputs, "endpoint": endpoint},
        ),
        resource_state(
            urn=provider_urn,
            type="pulumi:providers:kubernetes",
            inputs={"kubeconfig": f"server: {endpoint}"},
            outputs={},
            property_dependencies={"kubeconfig": [cluster_urn]},
        ),
        resource_state(
            urn=urn("s", "p", "kubernetes:core/v1:Namespace", "research"),
            type="kubernetes:core/v1:Namespace",
            inputs={"metadata": {"name": "research"}},
            outputs={},
            provider=f"{provider_urn}::k8s-id",
        ),
    ]


def test_an_object_replaced_for_its_provider_alone_is_created_before_the_old_one_goes() -> None:
    """The engine replaces it for its provider without asking the Kubernetes provider's diff,
    whose rule for named objects alone would delete first; a cluster Pulumi names is replaced
    create-before-delete, so nothing cascades."""
    [cluster, namespace] = compare(
        provider_chain({"roleArn": "role-a"}), provider_chain({"roleArn": "role-b"})
    )
    assert (namespace.operation, namespace.delete_first, namespace.replaced_with) == (
        "replace",
        False,
        None,
    )
    assert (cluster.operation, cluster.delete_first) == ("replace", False)


def test_a_dependent_the_cascade_does_not_take_is_replaced_on_its_own_terms() -> None:
    """A role takes its description from a cluster deleted first (that input cannot replace
    it) and changes its own path, dropping `protect` in the same change: outside the cascade,
    Pulumi allows the replacement, and the description, a known name, does not change."""
    cluster, role = "aws:eks/cluster:Cluster", "aws:iam/role:Role"

    def stack(role_arn: str, path: str, protect: bool) -> list[dict[str, Any]]:
        states = dependents_of(cluster, {"name": "ml", "roleArn": role_arn}, role, {})
        states.append(
            resource_state(
                urn=urn("s", "p", role, "reader"),
                type=role,
                inputs={"description": "ml", "path": path},
                outputs={},
                property_dependencies={"description": [states[0]["urn"]]},
                protect=protect,
            )
        )
        return states

    by_type = {c.type: c for c in compare(stack("a", "/", True), stack("b", "/ml/", False))}
    reader = by_type[role]
    assert (reader.operation, reader.replaced_with, reader.fails_preview) == (
        "replace",
        None,
        False,
    )
    assert [p.path for p in reader.properties] == ["path"]


def component_with_child(name: str, **options: Any) -> list[dict[str, Any]]:
    parent = urn("s", "p", "mlops:test:Storage", name)
    return [
        resource_state(
            urn=parent, type="mlops:test:Storage", custom=False, inputs={}, outputs={}, **options
        ),
        resource_state(
            urn=urn("s", "p", f"mlops:test:Storage${BUCKET}", f"{name}-extra"),
            type=BUCKET,
            inputs={"tags": {"owner": "ml"}},
            outputs={},
            parent=parent,
        ),
    ]


def test_children_inherit_only_the_alias_their_parent_was_found_by() -> None:
    """`ml-models` still exists, so its stale alias to `models` finds nothing and its new
    child is created; `models-extra` goes with `models`."""
    old_alias = urn("s", "p", "mlops:test:Storage", "models")
    before = component_with_child("models") + component_with_child("ml-models")
    after = component_with_child("ml-models", aliases=[old_alias])
    after[1]["urn"] = after[1]["urn"].replace("ml-models-extra", "ml-models-more")
    operations = sorted((urn_name(c.urn), c.operation) for c in compare(before, after))
    assert operations == [
        ("ml-models-extra", "delete"),
        ("ml-models-more", "create"),
        ("models-extra", "delete"),
    ]


def test_two_resources_taking_one_old_urn_as_their_alias_are_refused() -> None:
    old = urn("s", "p", BUCKET, "artifacts-models-bucket")
    before = bucket_pair("models")[:1]
    after = bucket_pair("ml-models", aliases=[old])[:1] + bucket_pair("models-2", aliases=[old])[:1]
    with pytest.raises(DiffError, match=r"both take .*artifacts-models-bucket as an alias"):
        compare(before, after)


def test_paths_the_program_ignores_changes_to_are_no_change() -> None:
    """A node group's desired size is the autoscaler's once created (`ignore_changes`): the
    engine leaves it out of the diff, and so does the report."""
    group = "aws:eks/nodeGroup:NodeGroup"

    def sized(desired: int, maximum: int) -> list[dict[str, Any]]:
        return [
            state_of(
                group, {"scalingConfig.desiredSize": desired, "scalingConfig.maxSize": maximum}
            )
        ]

    ignored = {urn("s", "p", group, "r"): ["scalingConfig.desiredSize"]}
    assert compare(sized(1, 4), sized(3, 4), ignored) == []
    [change] = compare(sized(1, 4), sized(3, 8), ignored)
    assert [p.path for p in change.properties] == ["scalingConfig.maxSize"]
