"""learnmesh ledger: append-only event store, derived state, blobs, replay and verify."""

from ._archive import ExportSummary, ImportReport, read_header
from ._blobs import BlobStore
from ._errors import BlobError, CorruptLedgerError, LedgerBusyError, LedgerError, WrongNetworkError
from ._ledger import Ledger
from ._results import AppendResult, AppendResults, StoredEvent, VerifyReport

__all__ = [
    "AppendResult",
    "AppendResults",
    "BlobError",
    "BlobStore",
    "CorruptLedgerError",
    "ExportSummary",
    "ImportReport",
    "Ledger",
    "LedgerBusyError",
    "LedgerError",
    "StoredEvent",
    "VerifyReport",
    "WrongNetworkError",
    "read_header",
]
