"""Development tooling, not used at runtime: the E3 sample-data generator, the demo, a local S3 server."""
