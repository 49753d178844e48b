"""Everything guidebot sends on its own: durable rows, a dispatcher, and the channel senders' contract."""
