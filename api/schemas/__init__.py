"""Pydantic schemas of the public API, apart from the storage models."""
