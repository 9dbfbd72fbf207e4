"""Facts: what the drivers read of a device, one module per device family.

A fact never changes a device: it only reads (services, processes, the registry,
files, iSCSI sessions) and parses the answer. Operations (`operations/`) read facts
first; a fact never calls an operation.
"""
