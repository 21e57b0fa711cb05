"""HTTP routes: each verifies, parses into a typed value, calls a service, and answers."""
