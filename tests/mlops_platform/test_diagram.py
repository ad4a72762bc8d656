"""The component map `plan --format mermaid` draws and the diff's PR comment carries."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mlops_platform.cli import main
from mlops_platform.diagram import change_marks, component_map
from mlops_platform.rendered import RenderedStack
from tests.conftest import REPO_ROOT

STACK = "urn:pulumi:s::p::pulumi:pulumi:Stack::p-s"
STORAGE = "urn:pulumi:s::p::mlops:storage:Storage::data"
BUCKET = "urn:pulumi:s::p::mlops:storage:Storage$mlops:bucket:Bucket::data-raw"
RAW = "urn:pulumi:s::p::mlops:storage:Storage$mlops:bucket:Bucket$aws:s3/bucket:Bucket::data-raw"
CLUSTER = "urn:pulumi:s::p::mlops:cluster:Cluster::eks"
NODES = "urn:pulumi:s::p::mlops:cluster:Cluster$aws:eks/nodeGroup:NodeGroup::eks-nodes"
KUBE = "urn:pulumi:s::p::pulumi:providers:kubernetes::eks"
TEAMS = "urn:pulumi:s::p::mlops:teams:Teams::teams"
NAMESPACE = "urn:pulumi:s::p::mlops:teams:Teams$kubernetes:core/v1:Namespace::teams-a"


def _resource(urn: str, parent: str = STACK, **state: Any) -> dict[str, Any]:
    return {
        "urn": urn,
        "type": urn.split("::")[2].rsplit("$", 1)[-1],
        "parent": parent,
        "custom": "$aws:" in urn or "$kubernetes:" in urn or "providers" in urn,
        **state,
    }


def _small_stack() -> list[dict[str, Any]]:
    """Storage holding a bucket component, a cluster whose nodes read the bucket, and a team
    namespace made through the cluster's Kubernetes provider."""
    return [
        _resource(STACK, parent=""),
        _resource(STORAGE),
        _resource(BUCKET, parent=STORAGE),
        _resource(RAW, parent=BUCKET, protect=True),
        _resource(CLUSTER),
        _resource(NODES, parent=CLUSTER, propertyDependencies={"tags": [RAW]}),
        _resource(KUBE, dependencies=[NODES]),
        _resource(TEAMS),
        _resource(NAMESPACE, parent=TEAMS, provider=f"{KUBE}::id-1"),
    ]


def test_the_map_nests_components_and_links_what_builds_on_what() -> None:
    assert component_map(_small_stack()) == (
        "---\n"
        "config:\n"
        "  theme: neutral\n"
        "---\n"
        "flowchart LR\n"
        '  subgraph c0["data<br/><small>Storage</small>"]\n'
        '    c1["data-raw<br/><small>Bucket · 1 resource, 1 protected</small>"]\n'
        "  end\n"
        '  c2["eks<br/><small>Cluster · 1 resource</small>"]\n'
        '  c3["eks<br/><small>kubernetes provider</small>"]\n'
        '  c4["teams<br/><small>Teams · 1 resource</small>"]\n'
        "  c0 --> c2\n"
        "  c2 --> c3\n"
        "  c3 --> c4\n"
    )


def test_a_diff_marks_components_in_colour_and_in_words() -> None:
    before = _small_stack()
    extra = _resource("urn:pulumi:s::p::mlops:storage:Storage::extra")
    after = [r for r in before if r["urn"] not in {TEAMS, NAMESPACE}] + [extra]
    drawn, marks = change_marks(before, after, {NODES: "changed", NAMESPACE: "removed"})
    picture = component_map(drawn, marks)

    assert '["eks<br/><small>Cluster · 1 resource<br/><b>changed</b></small>"]' in picture
    assert '["extra<br/><small>Storage · 0 resources<br/><b>added</b></small>"]' in picture
    # A removed component still shows what it held, so the reviewer sees what goes.
    assert '["teams<br/><small>Teams · 1 resource<br/><b>removed</b></small>"]' in picture
    classes = dict(
        (kind, nodes.split(","))
        for nodes, kind in re.findall(r"^  class (\S+) (\w+)$", picture, re.M)
    )
    assert {kind: len(nodes) for kind, nodes in classes.items()} == {
        "added": 1,
        "changed": 1,
        "removed": 1,
    }
    assert "classDef removed" in picture and "stroke-dasharray" in picture


def test_a_resource_removed_from_a_component_that_stays_is_not_counted() -> None:
    before = _small_stack()
    after = [r for r in before if r["urn"] != NAMESPACE]
    drawn, marks = change_marks(before, after, {NAMESPACE: "removed"})
    assert '["teams<br/><small>Teams · 0 resources<br/><b>changed</b></small>"]' in (
        component_map(drawn, marks)
    )


@pytest.fixture(scope="module")
def prod(rendered_stacks: dict[str, RenderedStack]) -> RenderedStack:
    return rendered_stacks["prod"]


def test_every_component_of_a_real_stack_is_drawn_once(prod: RenderedStack) -> None:
    picture = component_map(prod.to_deployment()["deployment"]["resources"])
    drawn = re.findall(r'(?:subgraph )?c\d+\["([^<"]+)<br/><small>([^<·]+?)[ <·]', picture)
    components = [r for r in prod.resources if not r.custom and r.type != "pulumi:pulumi:Stack"]
    # Providers the program makes (the cluster's Kubernetes one, the replica region's) are drawn.
    providers = [
        r
        for r in prod.resources
        if r.type.startswith("pulumi:providers:") and not r.name.startswith("default")
    ]
    assert sorted(drawn) == sorted(
        (r.name, r.type.rsplit(":", 1)[-1]) for r in [*components, *providers]
    )
    protected = sum(int(n) for n in re.findall(r"(\d+) protected", picture))
    assert protected == sum(r.protect for r in prod.resources if r.custom)


def test_the_main_links_of_a_real_stack(prod: RenderedStack) -> None:
    picture = component_map(prod.to_deployment()["deployment"]["resources"])
    ids = {
        label: node for node, label in re.findall(r'(c\d+)\["([^<"]+<br/><small>[^·<]+)', picture)
    }

    def linked(source: str, target: str) -> bool:
        return f"  {ids[source]} --> {ids[target]}\n" in picture

    assert linked("network<br/><small>Network ", "eks<br/><small>EksCluster ")
    assert linked("eks<br/><small>EksCluster ", "eks<br/><small>kubernetes provider")
    assert linked("eks<br/><small>kubernetes provider", "teams<br/><small>TeamNamespaces ")
    assert linked("eks<br/><small>EksCluster ", "gpu-training<br/><small>GpuNodePool ")
    assert linked("ebs<br/><small>KmsKey ", "gpu-training<br/><small>GpuNodePool ")
    assert not linked("teams<br/><small>TeamNamespaces ", "network<br/><small>Network ")


def test_plan_prints_the_map_and_keeps_the_file_note_off_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dev.json"
    args = ["--project-dir", str(REPO_ROOT), "plan", "--stack", "dev", "--out", str(out)]
    assert main([*args, "--format", "mermaid"]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith("---\nconfig:\n  theme: neutral\n---\nflowchart LR\n")
    assert "wrote" not in printed.out and f"wrote {out}" in printed.err
    assert out.is_file()


def test_the_readme_shows_the_dev_stack_as_it_renders_now(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["--project-dir", str(REPO_ROOT), "plan", "--stack", "dev", "--format", "mermaid"])
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("<!-- map:start -->\n")[1].split("<!-- map:end -->")[0]
    assert section == f"```mermaid\n{capsys.readouterr().out}```\n", (
        "README map is stale: paste `mlops-platform plan --stack dev --format mermaid`"
    )
