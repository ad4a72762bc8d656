"""The MLOps platform's policy rules, importable without starting the pack's server."""
