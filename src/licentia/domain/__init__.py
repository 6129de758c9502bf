"""The pure domain: rules and values that know nothing of HTTP or storage."""
