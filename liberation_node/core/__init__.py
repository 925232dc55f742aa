"""The pure protocol core: identity, wire codec, operations, records, replica.

Nothing in this package imports asyncio, aiortc, zeroconf, aiosqlite, aiohttp,
``time`` or ``random`` (tests/test_purity.py enforces it): callers pass ``now``
and randomness in, which is what lets the simulator run the same code.
"""
