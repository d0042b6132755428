"""A standalone Spark cluster on loopback: a master and workers, each its own JVM process, started
from pyspark's bundled `bin/spark-class` with bounded cores and memory.

Startup waits for what the processes log (the master's URL, each worker's registration), never for a
fixed time; a process that dies or stays silent fails the start with its log.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).parent
START_SECONDS = 120
MASTER_URL = re.compile(r"Starting Spark master at (spark://\S+)")


class SparkCluster:
    def __init__(self, directory: Path, workers: int = 2, cores: int = 1, memory: str = "1g"):
        self.directory = directory
        self.workers, self.cores, self.memory = workers, cores, memory
        self.processes: list[subprocess.Popen] = []
        self.url = ""

    def __enter__(self) -> SparkCluster:
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            master = self._start("master", "org.apache.spark.deploy.master.Master", "--port", "0")
            self.url = self._wait_for(master, MASTER_URL).group(1)
            for index in range(self.workers):
                worker = self._start(f"worker{index}", "org.apache.spark.deploy.worker.Worker", self.url,
                                     "--port", "0", "--cores", str(self.cores), "--memory", self.memory,
                                     "--work-dir", str(self.directory / f"work{index}"))
                self._wait_for(worker, re.compile(r"Successfully registered with master"))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()

    def log(self, name: str) -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")

    def _start(self, name: str, main_class: str, *args: str) -> subprocess.Popen:
        env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1",
               "SPARK_LOG_DIR": str(self.directory),
               # no REST submission server: its fixed port (6066) is not needed and may be taken
               "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false"}
        log = (self.directory / f"{name}.log").open("wb")
        process = subprocess.Popen([str(SPARK_HOME / "bin" / "spark-class"), main_class, "--host", "127.0.0.1",
                                    "--webui-port", "0", *args], stdout=log, stderr=subprocess.STDOUT, env=env)
        process.name = name  # type: ignore[attr-defined]
        self.processes.append(process)
        return process

    def _wait_for(self, process: subprocess.Popen, pattern: re.Pattern) -> re.Match:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            found = pattern.search(self.log(process.name))  # type: ignore[attr-defined]
            if found:
                return found
            if process.poll() is not None:
                break
            time.sleep(0.2)  # polling the log; the deadline, not this, decides failure
        raise RuntimeError(f"Spark {process.name} did not start:\n{self.log(process.name)}")  # type: ignore[attr-defined]
