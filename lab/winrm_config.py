"""A lab host's WinRM service settings, kept in its document's `winrm` section: what its
listener (lab/winrm.py) enforces and what its WSMan: drive (lab/powershell/registry.py) shows."""

from __future__ import annotations

from typing import Any

# winrm/config/Winrs MaxShellsPerUser (Microsoft Learn, "Quotas for Remote Shells";
# MS-WSMV 2.2.4.42 WinrsType).
MAX_SHELLS_PER_USER = 30
# winrm/config/Service MaxConcurrentOperationsPerUser (Microsoft Learn, "Installation
# and configuration for Windows Remote Management"): the lab reports it, it does not
# count operations.
MAX_CONCURRENT_OPERATIONS_PER_USER = 1500


def service_config(doc: dict[str, Any]) -> dict[str, Any]:
    """The document's settings, a default service's where unset: `basic`
    (winrm/config/Service/Auth Basic) and `allow_unencrypted` (winrm/config/Service
    AllowUnencrypted) false, `max_shells_per_user` 30,
    `max_concurrent_operations_per_user` 1500 (the same Microsoft Learn page)."""
    config: dict[str, Any] = {
        "basic": False,
        "allow_unencrypted": False,
        "max_shells_per_user": MAX_SHELLS_PER_USER,
        "max_concurrent_operations_per_user": MAX_CONCURRENT_OPERATIONS_PER_USER,
    }
    config.update(doc.get("winrm") or {})
    return config
