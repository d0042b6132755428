"""The courier's dlt source in an ordinary dlt pipeline script.

Run it from the project root, as any dlt pipeline:

    python pipelines/optimizely_pipeline.py                # every date present
    python pipelines/optimizely_pipeline.py 2026-11-27     # one day

In a courier project, dlt keeps the pipeline in `.courier/pipelines` and lands into the project's
warehouse (the courier's dlt plugin sets both), so what this lands counts for `courier run` and
`dbt build` exactly as if `courier run optimizely --ingest-only` had landed it. `courier run` is the
faster way into DuckDB (DuckDB reads the part files itself) and also builds the domain tables.

The source's arguments may come from dlt's config instead, as any source's: `[sources.optimizely_courier]`
in .dlt/config.toml holds `courier`, `dates` and `project_dir`.
"""

import sys

import dlt

from optimizely_courier.landing.ingest import recover_courier
from optimizely_courier.landing.source import courier_source

COURIER = "optimizely"


def main(argv: list[str]) -> None:
    pipeline = dlt.pipeline(pipeline_name=COURIER, destination="duckdb", dataset_name=f"raw_{COURIER}")
    recover_courier(pipeline, COURIER)  # what a dead run left half-landed is taken back first, as `courier run` does
    info = pipeline.run(courier_source(COURIER, dates=argv[0] if argv else "all"), loader_file_format="parquet")
    print(info)


if __name__ == "__main__":
    main(sys.argv[1:])
