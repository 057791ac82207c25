"""The router: auth, limits, filter, placement, relay, accounting."""
