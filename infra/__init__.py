"""The stack program: parses the stack's config and composes the platform's components."""
