"""Wait for PostgreSQL at DATABASE_URL and create the database if it does not exist yet."""

import os
import sys
import time
from urllib.parse import urlparse

import psycopg2
from psycopg2 import sql

url = urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/busreview"))
name = url.path.lstrip("/")
params = {
    "host": url.hostname,
    "port": url.port or 5432,
    "user": url.username or "postgres",
    "password": url.password,
    "dbname": "postgres",
}
deadline = time.monotonic() + 60
while True:
    try:
        conn = psycopg2.connect(**params)
        break
    except psycopg2.OperationalError as e:
        if time.monotonic() > deadline:
            sys.exit(f"PostgreSQL at {url.hostname}:{params['port']} is not reachable: {e}")
        time.sleep(1)
conn.autocommit = True
with conn.cursor() as cur:
    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
    if cur.fetchone() is None:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        print(f"created database {name}", file=sys.stderr)
conn.close()
