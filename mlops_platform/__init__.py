"""Tooling around the platform's Pulumi program: the offline plan and, later, policy checks."""
