"""Logging: human-readable or JSON lines; the access log is structured either way."""

from __future__ import annotations

import json
import logging
import sys
import time

from gateway.server.config import Settings

# Fields the S3 front end attaches to each access-log record.
ACCESS_FIELDS = (
    "remote", "user", "method", "operation", "status", "bytes_in", "bytes_out", "ms",
    "request_id",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = {f: getattr(record, f) for f in ACCESS_FIELDS if hasattr(record, f)}
        if fields:
            doc.update(fields)
        else:
            doc["message"] = record.getMessage()
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, separators=(",", ":"))


def setup_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    logging.getLogger("atonix.access").disabled = not settings.access_log
