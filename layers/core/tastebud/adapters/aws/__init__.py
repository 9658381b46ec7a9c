"""AWS adapters behind the ports: SageMaker (UserEncoder), OpenSearch k-NN (CandidateIndex), DynamoDB
(FeatureStore), S3 (ArtifactStore), Kinesis (EventSink); ElastiCache reuses the Redis StockStore.

Every adapter takes its client as an optional constructor argument (tests inject stubs; the composition
root ``tastebud.composition.aws`` builds the real ones) and turns SDK errors into domain exceptions.
"""
