"""Notifications: e-mail sent as durable jobs, and the reminders that a license is
about to end or has ended (events for webhooks, mails for customers, with a way to
unsubscribe from the reminders)."""
