"""lendcore: the system of record and of decision for a lender."""

__version__ = "0.1.0"
