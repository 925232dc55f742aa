"""The `liberation-node` subcommands (cli.py loads each module only when its command runs).

    run.py       run (the daemon), config
    node.py      status, peers, topology, address, stop, open
    events.py    events (follows the node's event stream)
    ledger.py    ledger, balance, register, claim, transfer
    feed.py      feed, post, retract
    common.py    what they share: options, errors, the client, exit statuses
    output.py    tables, amounts, times, sizes

A command that talks to the running node imports only the standard library,
click and api/client.py: it must answer in a blink (scripts/bench_cli.py), so the
core, the store, aiohttp and aiortc are never loaded for it.
"""
