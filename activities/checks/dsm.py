"""What the site check reads on a DSM, over ODBC with the worker's login: its Agent jobs,
the login's rights (on SQL Server), then its mode, replication and asset count as every
step reads them."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from activities.checks.report import READ_ERRORS, Report, not_read
from activities.drivers.errors import TlsRefused
from inventory.models import Side

if TYPE_CHECKING:  # the context loads the device libraries; the worker builds it
    from activities.context import DeviceContext


async def dsm(ctx: DeviceContext, side: Side, report: Report) -> None:
    d = ctx.inv.sides[side].dsm
    jobs = d.sqlserver_settings
    try:
        drv = ctx.dsm(side)
        ready = await asyncio.to_thread(drv.readiness)
        if not ready.missing_jobs:
            await asyncio.to_thread(drv.read)
    except TlsRefused as e:
        report.add(
            "dsm-answers",
            f"a TLS handshake over ODBC ({d.profile}) that the worker's ODBC driver and "
            "OpenSSL accept",
            not_read(e),
            "TLS refused, not a DSM that is down: SQL Server 2005/2008 speak TLS 1.0 (1.1 "
            "with updates), which the worker's OpenSSL 3 refuses unless its configuration "
            "allows it, and ODBC Driver 18 encrypts and checks the server's certificate "
            "by default; set the worker's OpenSSL configuration and the ODBC string's "
            "Encrypt/TrustServerCertificate (docs/site/sqlserver.md, TLS)",
        )
        return
    except READ_ERRORS as e:
        names = ""
        if d.profile == "sqlserver":
            names = f", its Agent jobs {jobs.master_job!r} and {jobs.backup_job!r}"
        report.add(
            "dsm-answers",
            f"an answer over ODBC ({d.profile}) with its mode, replication{names} and asset count",
            not_read(e),
            "make the DSM reachable and its login valid; on SQL Server see "
            "docs/site/sqlserver.md (the jobs, amsm's own database and its mode table, the "
            "login's rights)",
        )
        return
    report.ran("dsm-answers")
    report.ran("dsm-job")
    setting = {jobs.master_job.casefold(): "master_job", jobs.backup_job.casefold(): "backup_job"}
    for job in ready.missing_jobs:
        report.add(
            "dsm-job",
            f"the SQL Server Agent job {job!r} in msdb (dsm.sqlserver.{setting[job.casefold()]})",
            "no such job: the DSM's replication cannot be read, started or stopped",
            "create it on this DSM (both jobs on both DSMs: either side can be main), or name "
            "the DSM's own job in the inventory (docs/site/sqlserver.md)",
        )
    if ready.missing_rights is None:
        return  # the lab's SQLite has no logins: nothing to tell
    report.ran("dsm-permissions")
    if ready.missing_rights:
        user = ctx.creds.resolve(d.credentials).username if d.credentials else "(none)"
        report.add(
            "dsm-permissions",
            f"the login {user!r} may start and stop the Agent jobs and read and set the "
            "DSM's mode (SQLAgentOperatorRole in msdb; SELECT on msdb's job tables, EXECUTE "
            f"on sp_start_job and sp_stop_job; SELECT, UPDATE on {jobs.state_database}."
            "dbo.AmsmDsmMode; SELECT on the asset table while its database is online)",
            "lacks " + "; ".join(ready.missing_rights),
            "grant them on this DSM (docs/site/sqlserver.md, the login): e.g. in msdb "
            "ALTER ROLE SQLAgentOperatorRole ADD MEMBER (sp_addrolemember on 2005/2008)",
        )
