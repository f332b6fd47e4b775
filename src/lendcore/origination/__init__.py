"""Origination (pure): borrowers, KYC, watch-list screening, applications.

Nothing here imports the store, the services, the API or the CLI: the service
layer reads and writes, these modules decide.
"""
