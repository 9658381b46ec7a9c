"""HTTP API: Powertools resolver, typed request/response models, errors mapped by type."""
