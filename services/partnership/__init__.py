"""The partnership service: districts, the school registry, hand-in-hand pairings and activities."""
