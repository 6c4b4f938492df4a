"""Peer agents shipped with the harness: one per implementation under test."""
