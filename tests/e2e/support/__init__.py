"""Helpers of the end-to-end tests: a private PostgreSQL, recording servers, worker processes."""
