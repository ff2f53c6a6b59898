"""Northflank deployment services through the official ``northflank`` SDK."""

from sindri_jupyter.providers.northflank.provider import NorthflankProvider

__all__ = ["NorthflankProvider"]
