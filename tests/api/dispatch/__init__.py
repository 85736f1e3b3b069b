"""Tests of the dispatch service (storage, lifecycle, matching, reliability)."""
