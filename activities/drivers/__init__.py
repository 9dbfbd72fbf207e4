"""Device drivers: one error tree, a host-driver base, PowerShell builders, SSH and ODBC."""
