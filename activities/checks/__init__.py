"""The site check's reads, one module per device family (`amsm check`; the activities
are in activities/check.py). Facts only: nothing here changes a device."""
