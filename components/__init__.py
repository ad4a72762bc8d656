"""Reusable ComponentResources of the MLOps platform, one concept per module."""
