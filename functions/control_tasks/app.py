"""Lifecycle tasks outside the VPC: prepare, user-tower endpoint deploy/describe/delete, evaluation gate, publish."""

from __future__ import annotations

from tastebud.lifecycle.composition import control_handler

handler = control_handler()
