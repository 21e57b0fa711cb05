"""CRM delivery at the edge: the HTTP poster, the worker's wiring, and /api/v1 hooks and leads."""
