"""Errors of the storage layer, each with a one-line message fit for a user."""

from __future__ import annotations

__all__ = ["BlobError", "CorruptLedgerError", "LedgerBusyError", "LedgerError", "WrongNetworkError"]


class LedgerError(Exception):
    """The ledger cannot do what was asked (bad file, wrong network, I/O)."""


class WrongNetworkError(LedgerError):
    """A database or export file belongs to another network (another genesis)."""


class LedgerBusyError(LedgerError):
    """Another process (a running node) has the ledger open."""


class CorruptLedgerError(LedgerError):
    """Stored data does not replay: the file was damaged or edited."""


class BlobError(Exception):
    """A blob is missing, too large, or does not match its hash."""
