"""HTTP routes; each body is one call into a service."""
