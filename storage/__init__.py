"""Persistence: tables, repositories and migrations (it may import `bot`, never `webhooks`)."""
