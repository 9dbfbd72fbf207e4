"""How every program reaches Temporal: the connection and the payload codec, shared by
the worker, the CLI and the codec server."""
