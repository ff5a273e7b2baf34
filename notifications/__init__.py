"""Status notifications to channels (seed 003, channel-api.md §4-6) through a transactional
outbox: see `notifications.outbox` (writing), `notifications.delivery` (sending)."""
