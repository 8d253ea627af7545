"""Customers and contacts: the domain."""
