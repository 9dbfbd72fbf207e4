"""Operations: what the drivers change on a device, one module per device family.

Each reads the device's facts first and does nothing when it is already in the
wanted state, so running it twice is safe; the interlocks live here, so no caller
can bypass them.
"""
