"""Messaging channels: each one's webhook (in) and sender (out), around the same services."""
