"""What ``imnm serve`` writes to its logs.

uvicorn's access log writes each request's path with its query string. A card's report link
carries its credential in the query string (``/reports/KEY?user=...&expires=...&signature=...``):
anyone who could read the log could open a child's full report until the link expired. Every
access line therefore keeps the path and drops the query (``/reports/KEY?…``), in every worker
process, whatever the route. imnm's own messages name a path or a record identifier, never a
query.
"""

from __future__ import annotations

import logging
from typing import Any

QUERY_NOT_LOGGED = "?…"
"""What stands in an access line for a query string that was not written."""


def without_query(text: str) -> str:
    """``text`` up to its first '?', followed by :data:`QUERY_NOT_LOGGED` when it had one."""
    path, sep, _ = text.partition("?")
    return path + QUERY_NOT_LOGGED if sep else text


class NoQueryStrings(logging.Filter):
    """Drops the query string from every text argument of a record (uvicorn's access lines are
    a format with the client, method, path and query, HTTP version and status as arguments,
    and its formatter reads them back by position, so they stay five). The message itself is
    left as it is: uvicorn's is a constant format."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(without_query(a) if isinstance(a, str) else a
                                for a in record.args)
        return True


def serve_log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with imnm's logger added and the query strings taken out
    of the access lines (each worker process applies it when it starts)."""
    import uvicorn.config

    config = dict(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {**config.get("filters", {}),
                         "no_query_strings": {"()": "imnm.service.logs.NoQueryStrings"}}
    handlers = dict(config["handlers"])
    handlers["access"] = {**handlers["access"], "filters": ["no_query_strings"]}
    config["handlers"] = handlers
    config["loggers"] = {**config["loggers"], "imnm": {
        "handlers": ["default"], "level": "INFO", "propagate": False}}
    return config
