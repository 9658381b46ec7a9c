"""The local serving runtime, split by job (issue 23).

``runtime.ServingRuntime`` composes: ``current_view`` (the served version with the live catalog applied),
``changes`` (events, items, merchants), ``item_vectors`` (new items' vectors, cached in Redis), ``view`` (how a
view is built), ``smoke`` (what a version must answer before it serves) and ``watcher`` (the background thread).
Version swaps are ``tastebud.version_follower``'s, shared with the AWS backend.
"""
