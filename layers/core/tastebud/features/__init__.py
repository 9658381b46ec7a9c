"""Features shared by training and serving: one module per concept, no train/serve skew."""
