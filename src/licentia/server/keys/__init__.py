"""Keys: the operator's master key and each vendor's Ed25519 signing keys."""
