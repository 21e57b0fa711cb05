"""Lead intake: verify, then parse each source's webhook into `Submission`s."""
