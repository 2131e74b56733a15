"""A local stand-in for a Supabase project's database: PostgreSQL 15 plus the compatibility layer.

Used by the test suite and by `python -m devstack` (the local run). Not deployed.
"""
