"""Tastebud offline side: data contract, simulator, training, evaluation, benchmarks and the CLI."""
