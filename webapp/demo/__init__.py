"""Synthetic demo data: `flask demo seed` (seed.py) and the simulated history of `flask demo generate`.

`seed` creates the territories, agencies, users, Mesas and resources; `history` drives cases through the
real protocol on a fake clock and `answers` gives the synthetic answer to each form. Every name is invented
or a public place name: no real person appears in demo data.
"""
