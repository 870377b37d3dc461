"""The test harness: helpers the tiers share (HTTP servers in threads, the CLI in process or as a process, the
moto world). Plain functions and classes; fixtures stay in conftest.py files."""
