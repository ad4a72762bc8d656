"""Entry point the Pulumi CLI runs for `--policy-pack policies`: assembles the pack, nothing else.

`PolicyPack(...)` starts the analyzer's gRPC server and never returns.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from mlops_guardrails.analyzer import analyze_each_resource_once
from mlops_guardrails.pack import PACK_NAME, POLICIES

analyze_each_resource_once()
PolicyPack(name=PACK_NAME, policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
