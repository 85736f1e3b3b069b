"""Tests of the phone pages and the workbench in a real browser."""
