"""Tastebud: personalised recommendations for a food-delivery marketplace (serving core, the Lambda layer)."""

from __future__ import annotations

__version__ = "0.1.0"
