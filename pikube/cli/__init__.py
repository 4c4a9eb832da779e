"""The command line: parses flags into frozen settings and hands them to the runtime."""
