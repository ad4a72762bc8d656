"""The pack starts as `pulumi preview --policy-pack policies` starts it, and serves its rules."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.empty_pb2 import Empty
from pulumi.runtime.proto import analyzer_pb2_grpc

from mlops_guardrails.pack import PACK_NAME, POLICIES
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    # The CLI runs the pack's __main__.py from its directory and reads the port from stdout.
    with subprocess.Popen(
        [sys.executable, "__main__.py"],
        cwd=REPO_ROOT / "policies",
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                yield analyzer_pb2_grpc.AnalyzerStub(channel)
        finally:
            server.kill()


def test_pack_serves_its_name_and_every_rule(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(Empty(), timeout=10)
    assert info.name == PACK_NAME
    assert sorted(policy.name for policy in info.policies) == sorted(p.name for p in POLICIES)
