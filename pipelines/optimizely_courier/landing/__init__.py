"""Landing: S3 and local stores, discovery of a run's files, the dlt source, the DuckDB landing,
the record of what is landed, the E3 schemas, and samples."""
