"""`amsm survey`: the read-only site survey. The drivers' own facts run against each host
through recording drivers (recording.py), beside the survey's own probes (probes.py);
the answers are kept as fact files, checked against the register of site assumptions
(register.py), and replayed through the same facts by `amsm survey verify` (replay.py)."""
