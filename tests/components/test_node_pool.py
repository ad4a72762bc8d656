"""Every node group runs on the secure launch template."""

from __future__ import annotations

import pytest

from components.common import ComponentArgsError
from components.node_pool import NodePool, NodePoolArgs
from mlops_platform.rendered import RenderedStack
from tests.conftest import run_component


def test_every_node_group_uses_a_hardened_launch_template(rendered: RenderedStack) -> None:
    templates = {t.id: t for t in rendered.of_type("aws:ec2/launchTemplate:LaunchTemplate")}
    ebs_key = next(k for k in rendered.of_type("aws:kms/key:Key") if k.name == "ebs-key")
    node_groups = rendered.of_type("aws:eks/nodeGroup:NodeGroup")
    assert node_groups
    for node_group in node_groups:
        template = templates[node_group.inputs["launchTemplate"]["id"]]
        assert template.inputs["metadataOptions"]["httpTokens"] == "required"
        assert template.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
        [root] = template.inputs["blockDeviceMappings"]
        assert root["ebs"]["encrypted"] == "true"
        assert root["ebs"]["volumeType"] == "gp3"
        assert root["ebs"]["kmsKeyId"] == ebs_key.outputs["arn"]
        for interface in template.inputs.get("networkInterfaces", []):
            assert interface.get("associatePublicIpAddress") != "true"
        assert "remoteAccess" not in node_group.inputs


def test_system_nodes_repair_themselves_and_leave_size_to_the_autoscaler(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    for stack, sizes in {"dev": (1, 2, 3), "prod": (3, 3, 6)}.items():
        [node_group] = [
            g
            for g in rendered_stacks[stack].of_type("aws:eks/nodeGroup:NodeGroup")
            if g.name == "eks-system-node-group"
        ]
        scaling = node_group.inputs["scalingConfig"]
        assert (scaling["minSize"], scaling["desiredSize"], scaling["maxSize"]) == sizes
        assert node_group.inputs["nodeRepairConfig"] == {"enabled": True}
        assert node_group.inputs["capacityType"] == "ON_DEMAND"
        assert node_group.inputs["amiType"] == "AL2023_x86_64_STANDARD"
        assert node_group.inputs["labels"] == {"mlops.platform/pool": "system"}


def pool_args(**overrides: object) -> NodePoolArgs:
    defaults: dict[str, object] = {
        "cluster_name": "c",
        "node_role_arn": "arn:aws:iam::123456789012:role/n",
        "subnet_ids": ["subnet-1"],
        "instance_types": ("m7i.large",),
        "ami_type": "AL2023_x86_64_STANDARD",
        "min_size": 1,
        "desired_size": 1,
        "max_size": 2,
        "root_volume_gib": 50,
        "root_volume_throughput": 125,
        "ebs_kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/e",
        "tags": {},
    }
    return NodePoolArgs(**{**defaults, **overrides})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"min_size": 3}, "min_size <= desired_size <= max_size"),
        ({"instance_types": ()}, "at least one instance type"),
    ],
)
def test_inconsistent_pools_are_refused(overrides: dict[str, object], problem: str) -> None:
    with pytest.raises(ComponentArgsError, match=problem):
        run_component(lambda: NodePool("p", pool_args(**overrides)))
