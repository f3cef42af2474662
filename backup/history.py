"""The record of backup runs: every run's summary and catalogue, and the last good one.

Kept in the engine's service records (namespace ``backups``), so every
gateway and the CLI see the same history:

- ``run/<run id>``: the run's summary (``RunRecord``), with its catalogue as
  the record's blob;
- ``last/<target address>/<bucket>``: the id of the last successful run of
  that bucket to that target (where the next run starts from).
"""

from __future__ import annotations

from backup.catalog import SUCCEEDED, CatalogEntry, RunRecord, decode_catalog, encode_catalog
from engine import Engine, Principal, ServiceRecords

NAMESPACE = "backups"


class NoSuchRun(ValueError):
    pass


class BackupHistory:
    def __init__(self, engine: Engine, principal: Principal) -> None:
        self.records: ServiceRecords = engine.records(principal, NAMESPACE)

    async def save(self, run: RunRecord, catalog: list[CatalogEntry] | None = None) -> None:
        """Store the run (and its catalogue); a success becomes its pair's last good run."""
        blob = encode_catalog(catalog) if catalog is not None else None
        await self.records.put(f"run/{run.run_id}", run.encode(), blob)
        if run.status == SUCCEEDED:
            await self.records.put(_last(run.target, run.bucket), run.run_id.encode())

    async def run(self, run_id: str) -> RunRecord:
        raw = await self.records.get(f"run/{run_id}")
        if raw is None:
            raise NoSuchRun(f"no backup run {run_id!r} (see atonix-cli backup list)")
        return RunRecord.decode(raw)

    async def catalog(self, run_id: str) -> list[CatalogEntry]:
        raw = await self.records.blob(f"run/{run_id}")
        if raw is None:
            raise NoSuchRun(f"backup run {run_id!r} has no catalogue (it did not finish)")
        return decode_catalog(raw)

    async def runs(self, bucket: str | None = None) -> list[RunRecord]:
        """Every run (of one bucket), oldest first."""
        found = [RunRecord.decode(raw) for _, raw in await self.records.list("run/")]
        mine = [r for r in found if bucket is None or r.bucket == bucket]
        return sorted(mine, key=lambda r: (r.started, r.run_id))

    async def last_success(self, target: str, bucket: str) -> RunRecord | None:
        raw = await self.records.get(_last(target, bucket))
        return await self.run(raw.decode()) if raw is not None else None


def _last(target: str, bucket: str) -> str:
    return f"last/{target}/{bucket}"
