"""The benchmark's only app: its ``tasks`` module holds the no-op task."""
