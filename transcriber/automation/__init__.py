"""Automation: webhooks on job events, watch folders, processing analytics.

Plain Python (no Qt): the engine's runner starts the background services, the command
line and the window read and change their settings through the store.
"""
