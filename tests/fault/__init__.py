"""Fault-injection harness for the chat delivery contract: a TCP fault proxy,
a protocol client that logs what it observes, and the log check."""
