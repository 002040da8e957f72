"""End-to-end fixtures come from the shared harness (``eportal_core.testing.live``):
``live_server`` / ``live_server_pg`` run with default settings; tests that need ini settings of
their own (a trusted proxy, a flush interval) start servers through ``start_live_server``."""
