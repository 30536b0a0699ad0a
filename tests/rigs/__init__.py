"""Test rig: a fake Databricks workspace, a throwaway PostgreSQL, and a demo that joins them."""
