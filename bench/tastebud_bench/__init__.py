"""Benchmarks, load generators and fault injection: above serving and training, below the CLI (`tastebud bench`,
`tastebud chaos`). They measure the serving code; they train nothing and serve nothing themselves."""
