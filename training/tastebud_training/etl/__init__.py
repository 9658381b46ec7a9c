"""Batch ETL on Spark: the event lake + the catalog -> the data-contract training tables (spark_etl.py)."""
