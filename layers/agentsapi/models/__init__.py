"""Pydantic models of every API object (requests strict, responses in the SDK's exact shapes)."""
