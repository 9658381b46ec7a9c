"""Index hot-swap tasks inside the VPC (OpenSearch): create, bulk load, background force merge, warm-up, verify,
flip, rollback, cleanup."""

from __future__ import annotations

from tastebud.lifecycle.composition import index_handler

handler = index_handler()
