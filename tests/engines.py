"""Engines besides DuckDB for the cross-engine tests: a throwaway PostgreSQL server and a local Spark.

PostgreSQL: `initdb` into a fresh temporary folder, `pg_ctl start` on a free loopback port with
trust authentication, one database, and everything stopped and deleted afterwards. initdb refuses
to run as root, so under root the server runs as the `postgres` OS user (created if missing).

Spark: dbt-spark `method: session` starts a SparkSession inside the dbt process. profiles.yml
puts its warehouse (Parquet files of every table) and its Derby metastore under
SURVEYSYNTH_SPARK_DIR, so a test gives each build its own folder and reads the tables back from
the Parquet files, without starting a second Spark.

Problems raise with what went wrong and how to fix it: these engines are part of what the suite
proves, so a missing server is a failure, never a skip.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

PG_SUPERUSER = "postgres"
PG_DBNAME = "surveysynth"


# --------------------------------------------------------------------------------- PostgreSQL


def find_postgres_bindir() -> Path:
    """The folder holding initdb and pg_ctl: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or under "
        "/usr/lib/postgresql/*/bin. Install them (Debian/Ubuntu: apt-get install postgresql) "
        "to run the PostgreSQL engine tests."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_os_user() -> str | None:
    """The OS user to run the server as: `postgres` under root (created if missing), else None."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_SUPERUSER)
    except KeyError:
        proc = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/bin/false", PG_SUPERUSER],
            check=False,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"running as root, and the OS user '{PG_SUPERUSER}' (initdb refuses root) is "
                f"missing and could not be created: {proc.stderr.strip()}"
            ) from None
    return PG_SUPERUSER


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    dbname: str
    root: Path

    def connect(self):
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname=self.dbname)

    def dbt_env(self, schema: str) -> dict[str, str]:
        """Environment for profiles.yml's postgres target, building into `schema`."""
        return {
            "SURVEYSYNTH_PG_HOST": self.host,
            "SURVEYSYNTH_PG_PORT": str(self.port),
            "SURVEYSYNTH_PG_USER": self.user,
            "SURVEYSYNTH_PG_PASSWORD": "",
            "SURVEYSYNTH_PG_DB": self.dbname,
            "SURVEYSYNTH_PG_SCHEMA": schema,
        }

    def query(self, sql: str) -> pd.DataFrame:
        with contextlib.closing(self.connect()) as con, con.cursor() as cur:
            cur.execute(sql)
            cols = [d[0] for d in cur.description]
            return pd.DataFrame(cur.fetchall(), columns=cols)

    def load_parquet(self, path: Path, schema: str, table: str) -> str:
        """Create `schema.table` from a Parquet file (COPY of its CSV rendering); return its name."""
        arrow = pq.read_table(path)
        cols = ", ".join(f'"{f.name}" {_pg_type(f.type, f.name)}' for f in arrow.schema)
        sink = pa.BufferOutputStream()
        # Arrow quotes every string and leaves nulls unquoted and empty: COPY's CSV null convention.
        pacsv.write_csv(arrow, sink, pacsv.WriteOptions(include_header=False))
        data = sink.getvalue().to_pybytes()
        with contextlib.closing(self.connect()) as con:
            with con.cursor() as cur:
                cur.execute(f"create schema if not exists {schema}")
                cur.execute(f"drop table if exists {schema}.{table} cascade")
                cur.execute(f"create table {schema}.{table} ({cols})")
                cur.copy_expert(
                    f"copy {schema}.{table} from stdin with (format csv)", io.BytesIO(data)
                )
            con.commit()
        return f"{schema}.{table}"


def _pg_type(t: pa.DataType, name: str) -> str:
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
        return "text"
    if pa.types.is_decimal(t):
        return f"numeric({t.precision}, {t.scale})"
    if pa.types.is_integer(t):
        return "bigint"
    if pa.types.is_floating(t):
        return "double precision"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    raise TypeError(f"column '{name}': no PostgreSQL type for Arrow type {t}; extend _pg_type")


def _run(cmd: list[str], user: str | None, what: str, log: Path | None = None) -> None:
    kwargs = {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []} if user else {}
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120, **kwargs)
    if proc.returncode != 0:
        detail = (proc.stdout + proc.stderr).strip()
        if log is not None and log.exists():
            detail += "\n--- server log ---\n" + log.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"PostgreSQL {what} failed ({' '.join(cmd)}):\n{detail}")


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL server on 127.0.0.1 with database `surveysynth`, gone on exit."""
    bindir = find_postgres_bindir()
    user = _server_os_user()
    # Not under pytest's tmp_path: its parents are private to root, and the server user must
    # reach its data folder.
    root = Path(tempfile.mkdtemp(prefix="surveysynth-pg-"))
    datadir, log = root / "data", root / "server.log"
    if user:
        pw = pwd.getpwnam(user)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    started = False
    try:
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-U",
                PG_SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            user,
            "initdb",
        )
        last_error: Exception | None = None
        for _ in range(3):  # a free port can be taken between choosing and binding it
            port = _free_port()
            opts = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {root} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c shared_buffers=32MB -c max_connections=20"
            )
            try:
                _run(
                    [
                        str(bindir / "pg_ctl"),
                        "-D",
                        str(datadir),
                        "-l",
                        str(log),
                        "-w",
                        "-t",
                        "60",
                        "-o",
                        opts,
                        "start",
                    ],
                    user,
                    "pg_ctl start",
                    log,
                )
                started = True
                break
            except RuntimeError as exc:
                last_error = exc
        if not started:
            raise last_error  # type: ignore[misc]
        server = PostgresServer("127.0.0.1", port, PG_SUPERUSER, PG_DBNAME, root)
        import psycopg2

        with contextlib.closing(
            psycopg2.connect(host=server.host, port=port, user=PG_SUPERUSER, dbname="postgres")
        ) as con:
            con.autocommit = True
            with con.cursor() as cur:
                cur.execute(f"create database {PG_DBNAME}")
        yield server
    finally:
        if started:
            _run(
                [str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "-w", "stop"],
                user,
                "pg_ctl stop",
            )
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------------- Spark


def spark_env(spark_dir: Path, schema: str = "surveysynth") -> dict[str, str]:
    """Environment for profiles.yml's spark target: warehouse and metastore under spark_dir, and
    the temporary folders PySpark leaves behind (<uuid>_resources) too."""
    tmp = Path(spark_dir) / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return {
        "TMPDIR": str(tmp),
        "JAVA_TOOL_OPTIONS": f"-Djava.io.tmpdir={tmp}",
        "SURVEYSYNTH_SPARK_DIR": str(spark_dir),
        "SURVEYSYNTH_SPARK_SCHEMA": schema,
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }


_REGISTER_SCRIPT = """
import json, sys
from pyspark.sql import SparkSession
spark_dir, tables = sys.argv[1], json.loads(sys.argv[2])
spark = (
    SparkSession.builder.master("local[1]").enableHiveSupport()
    .config("spark.sql.warehouse.dir", spark_dir + "/warehouse")
    .config("spark.driver.extraJavaOptions", "-Dderby.system.home=" + spark_dir)
    .config("spark.hadoop.javax.jdo.option.ConnectionURL",
            "jdbc:derby:;databaseName=metastore_db;create=true")
    .config("spark.ui.enabled", "false")
    .getOrCreate()
)
for name, path in tables.items():
    spark.sql("create database if not exists " + name.split(".")[0])
    spark.sql("drop table if exists " + name)
    spark.sql("create table " + name + " using parquet as select * from parquet.`" + path + "`")
spark.stop()
"""


def spark_register_parquet(spark_dir: Path, tables: dict[str, Path]) -> None:
    """Create `schema.table` from Parquet files in the warehouse and metastore that profiles.yml's
    spark target uses under spark_dir. Runs its own short-lived Spark (the embedded Derby metastore
    takes one process at a time), before dbt starts its own."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _REGISTER_SCRIPT,
            str(spark_dir),
            json.dumps({k: str(v) for k, v in tables.items()}),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **spark_env(spark_dir)},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"registering Parquet tables in Spark failed:\n{proc.stderr[-4000:]}")


def read_spark_table(spark_dir: Path, table: str, schema: str = "surveysynth") -> pd.DataFrame:
    """A table dbt-spark built (Parquet files under the warehouse), read without Spark."""
    folder = Path(spark_dir) / "warehouse" / f"{schema}.db" / table
    if not any(folder.glob("*.parquet")):
        raise FileNotFoundError(f"no Parquet files for Spark table {schema}.{table} in {folder}")
    with duckdb.connect() as con:
        return con.sql(f"select * from read_parquet('{folder}/*.parquet')").df()
