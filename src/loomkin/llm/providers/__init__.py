"""Adapters from the provider-neutral model interface to each vendor's SDK."""
