"""The reps' console (/console) and the API for programs (/api/v1): logins, sessions, CSRF,
API keys, and the checks every route of theirs makes."""
