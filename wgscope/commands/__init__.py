"""One module per `wgscope` subcommand; each has register(subparsers)."""
