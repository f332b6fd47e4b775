"""Simulating a lender: who applies, how borrowers repay, and the report of the book.

`behaviour` holds the pure model (applicants and their repayment behaviour,
drawn from a seeded stream); `html` renders the portfolio report as a page that
works offline. The simulation itself, which drives the real commands, is the
service `lendcore.services.simulate`.
"""
