"""The channel-independent dialog: Inbound messages in, Reply parts out."""
