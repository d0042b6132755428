"""Landing: S3 and local stores, discovery of a run's files, the dlt source and pipeline, part files, the DuckDB
landing, one landing run (recovery and chunking), the record of what is landed, the E3 schemas, and samples."""
