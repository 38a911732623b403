"""Helpers shared by the test suites: real services started and stopped for tests."""
