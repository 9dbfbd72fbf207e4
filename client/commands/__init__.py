"""One module per `amsm` command (or family of commands), its arguments beside its
handler: `add(sub)` adds its subparsers, and each sets `handler` (a command over
Temporal: `await handler(temporal, inv, args)`) or `local` (one that needs neither the
server nor the inventory: `await local(args)`). client/cli.py lists them."""
