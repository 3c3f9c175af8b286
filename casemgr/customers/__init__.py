"""Customers (issue 20): a customer's cases, open and closed, and their known addresses, found by email."""
