"""The seed's two-tower retrieval model (TensorFlow/Keras): features, towers, hybrid-negative loss, training, export."""
