"""Laptop-side provisioning: turning running boards into a cluster over SSH (`pikube provision`).

Nothing here runs on a board; the "off the board" import contract keeps board code from importing it.
"""
