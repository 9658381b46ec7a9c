"""The composition roots: the only places that build clients and wire a service."""
