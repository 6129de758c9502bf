"""Rate limits per client address and per credential, for every family of routes
(docs/security.md): the families a route may declare, and the limiter that counts."""
